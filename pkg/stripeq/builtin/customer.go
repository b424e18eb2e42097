package builtin

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
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
func (h *handlers) handleCustomer(ctx context.Context, e *stripeq.Event[customerObject]) error {
	c := e.Object
	if c.ID == "" {
		return stripeq.Permanent(errors.New("customer without an id"))
	}
	deleted := c.Deleted || e.Type == events.CustomerDeleted
	b := h.batch(e.Meta)
	applied := b.apply(ctx, stripeq.Record{Key: records.CustomerKey(c.ID)}, e.Meta,
		"email", c.Email,
		"name", c.Name,
		"deleted", strconv.FormatBool(deleted),
	)
	res, err := b.exec(ctx)
	if err != nil {
		return err
	}
	if !res.applied(applied) {
		e.Log.InfoContext(ctx, "older than the customer record; skipped", slog.String("customer", c.ID))
	}
	return nil
}
