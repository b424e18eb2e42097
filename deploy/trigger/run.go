package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/eventsender"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := getenv("API_ADDR")
	switch {
	case addr == "":
		addr = "127.0.0.1:8080"
	case strings.HasPrefix(addr, ":"):
		addr = "127.0.0.1" + addr
	}
	secret := getenv("STRIPE_WEBHOOK_SECRET")
	if secret == "" {
		secret = eventsender.DevSecret
	}
	s := eventsender.Sender{Out: out}
	var d eventsender.Delivery
	fs.StringVar(&s.URL, "url", "http://"+addr+"/webhooks/stripe", "the receiver's webhook URL (default: API_ADDR's)")
	fs.StringVar(&s.Secret, "secret", secret, "the signing secret (default: STRIPE_WEBHOOK_SECRET, else the dev secret)")
	fs.StringVar(&d.ID, "id", "", "the event ID to send (default: a fresh one); repeat one to deliver it again")
	fs.BoolVar(&d.Twice, "twice", false, "deliver the event twice, as Stripe's duplicates")
	fs.BoolVar(&d.Old, "old", false, "sign with a timestamp 10 minutes old, a replay the receiver must refuse")
	fs.BoolVar(&d.Rotate, "rotate", false, "add a signature by another secret, as during a secret rotation")
	fs.StringVar(&d.Account, "account", "", "a Connect account ID (acct_…) for the event")
	fs.BoolVar(&d.Livemode, "livemode", false, "mark the event live mode")
	fs.StringVar(&d.Objects, "objects", "", "suffix for the object IDs (cus_stripeq_demo_<suffix>, …); default: the fixtures' IDs, or a fresh one for scenario")
	fs.StringVar(&s.APIVersion, "api-version", stripetest.APIVersion20231016, "the webhook endpoint's Stripe API version, at which the events are rendered: "+strings.Join(stripetest.APIVersions(), ", "))
	shuffle := fs.Bool("shuffle", false, "scenario: deliver in a random order")
	redisURL := fs.String("redis", getenv("REDIS_URL"), "scenario: the Redis to read the customer record from (default REDIS_URL)")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: trigger [flags] <event type> | scenario | list\n\nflags:\n")
		fs.PrintDefaults()
	}
	// Flags may come before or after the command word.
	var words []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(words) != 1 {
		fs.Usage()
		return errors.New("name one event type, scenario or list")
	}
	if !slices.Contains(stripetest.APIVersions(), s.APIVersion) {
		return fmt.Errorf("-api-version %q: no fixtures at that version; the versions are %s", s.APIVersion, strings.Join(stripetest.APIVersions(), ", "))
	}
	switch cmd := words[0]; {
	case cmd == "list":
		fmt.Fprintln(out, "event types (at every API version):")
		for _, t := range stripetest.FixtureTypes() {
			fmt.Fprintln(out, "  "+t)
		}
		fmt.Fprintf(out, "API versions (-api-version, default %s):\n", stripetest.APIVersion20231016)
		for _, v := range stripetest.APIVersions() {
			fmt.Fprintln(out, "  "+v)
		}
		return nil
	case cmd == "scenario":
		return scenario(ctx, s, d, *shuffle, *redisURL, out)
	case slices.Contains(stripetest.FixtureTypes(), cmd):
		_, err := s.Send(ctx, cmd, time.Now(), d)
		return err
	default:
		return fmt.Errorf("no fixture for event type %q; `trigger list` shows them", cmd)
	}
}

// scenario plays the lifecycle for a new customer, waits until the worker
// has handled every event the api took (not those whose type it ignores),
// and prints the customer record from Redis.
func scenario(ctx context.Context, s eventsender.Sender, d eventsender.Delivery, shuffle bool, redisURL string, out io.Writer) error {
	if d.Objects == "" {
		d.Objects = eventsender.RandomSuffix()
	}
	fmt.Fprintf(out, "scenario for customer %s (%s order, API version %s)\n", stripetest.CustomerID(d.Objects), map[bool]string{true: "shuffled", false: "Stripe's"}[shuffle], s.APIVersion)
	ids, err := s.Scenario(ctx, d, shuffle)
	if err != nil {
		return err
	}
	opt, err := redisconn.Parse(redisURL)
	if err != nil {
		return fmt.Errorf("-redis: %w", err)
	}
	rdb := redisconn.NewClient(opt)
	defer rdb.Close()
	if err := eventsender.WaitHandled(ctx, rdb, stripetask.DefaultQueue, ids, 60*time.Second); err != nil {
		return err
	}
	return eventsender.PrintCustomer(ctx, rdb, stripetest.CustomerID(d.Objects), out)
}
