package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// customerObject is what handleCustomer reads of a stripe.Customer.
type customerObject struct {
	ID      string `json:"id"`
	Email   string `json:"email"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

// handleCustomer keeps the customer record for customer.created,
// customer.updated and customer.deleted:
//
//	HASH stripeq:customer:{<customer id>}
//	  email, name, deleted ("true"/"false"), last_event_id, last_event_created
func (w *worker) handleCustomer(ctx context.Context, j job, c *customerObject) error {
	if c.ID == "" {
		return fmt.Errorf("%w: customer without an id", asynq.SkipRetry)
	}
	deleted := c.Deleted || j.meta.Type == stripetask.CustomerDeleted
	applied, err := w.records.apply(ctx, customerKey(c.ID), clockRecord, j.event.ID, j.event.Created,
		"email", c.Email,
		"name", c.Name,
		"deleted", strconv.FormatBool(deleted),
	)
	if err != nil {
		return err
	}
	if !applied {
		j.log.InfoContext(ctx, "older than the customer record; skipped", slog.String("customer", c.ID))
	}
	return nil
}
