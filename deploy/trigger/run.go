package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// devWebhookSecret is the secret `go tool task dev` uses when
// STRIPE_WEBHOOK_SECRET is unset (deploy/dev's DevWebhookSecret).
const devWebhookSecret = "whsec_stripeq_dev_secret"

// options are what a delivery can vary, as Stripe really does.
type options struct {
	url      string
	secret   string
	id       string // "" for a fresh event ID
	twice    bool   // deliver the same event twice
	old      bool   // sign with a timestamp 10 minutes old: a replay the api must refuse
	rotate   bool   // sign with a second, other secret too, as during a rotation
	account  string // Connect account
	livemode bool
	suffix   string // object IDs of this run (see stripetest.Relabel); "" keeps the fixtures'
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	fs.SetOutput(out)
	var o options
	addr := getenv("API_ADDR")
	switch {
	case addr == "":
		addr = "127.0.0.1:8080"
	case strings.HasPrefix(addr, ":"):
		addr = "127.0.0.1" + addr
	}
	secret := getenv("STRIPE_WEBHOOK_SECRET")
	if secret == "" {
		secret = devWebhookSecret
	}
	fs.StringVar(&o.url, "url", "http://"+addr+"/webhooks/stripe", "the receiver's webhook URL")
	fs.StringVar(&o.secret, "secret", secret, "the signing secret (default: STRIPE_WEBHOOK_SECRET, else the dev secret)")
	fs.StringVar(&o.id, "id", "", "the event ID to send (default: a fresh one); repeat one to deliver it again")
	fs.BoolVar(&o.twice, "twice", false, "deliver the event twice, as Stripe's duplicates")
	fs.BoolVar(&o.old, "old", false, "sign with a timestamp 10 minutes old, a replay the receiver must refuse")
	fs.BoolVar(&o.rotate, "rotate", false, "add a signature by another secret, as during a secret rotation")
	fs.StringVar(&o.account, "account", "", "a Connect account ID (acct_…) for the event")
	fs.BoolVar(&o.livemode, "livemode", false, "mark the event live mode")
	fs.StringVar(&o.suffix, "objects", "", "suffix for the object IDs (cus_stripeq_demo_<suffix>, …); default: the fixtures' IDs")
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
	switch cmd := words[0]; {
	case cmd == "list":
		for _, t := range stripetest.FixtureTypes() {
			fmt.Fprintln(out, t)
		}
		return nil
	case cmd == "scenario":
		return scenario(ctx, o, *shuffle, *redisURL, out)
	case slices.Contains(stripetest.FixtureTypes(), cmd):
		_, err := send(ctx, o, cmd, time.Now(), out)
		return err
	default:
		return fmt.Errorf("no fixture for event type %q; `trigger list` shows them", cmd)
	}
}

// send builds an event of eventType created at created and delivers it
// (twice with -twice). It returns the event ID.
func send(ctx context.Context, o options, eventType string, created time.Time, out io.Writer) (string, error) {
	id := o.id
	if id == "" {
		id = "evt_" + randomHex(12)
	}
	body := stripetest.Fixture(eventType)
	if o.suffix != "" {
		body = stripetest.Relabel(body, o.suffix)
	}
	body = stripetest.Edit(body, func(e map[string]any) {
		e["id"], e["created"], e["livemode"] = id, created.Unix(), o.livemode
		if o.account != "" {
			e["account"] = o.account
		}
	})
	if _, err := stripetask.Decode(body); err != nil {
		return "", fmt.Errorf("fixture %s: %w", eventType, err)
	}
	deliveries := 1
	if o.twice {
		deliveries = 2
	}
	for range deliveries {
		ts := time.Now()
		if o.old {
			ts = ts.Add(-10 * time.Minute)
		}
		secrets := []string{o.secret}
		if o.rotate {
			secrets = []string{"whsec_" + randomHex(16), o.secret}
		}
		status, answer, err := post(ctx, o.url, body, stripetest.Sign(body, ts, secrets...))
		if err != nil {
			return id, err
		}
		fmt.Fprintf(out, "%-40s %s → %d %s\n", eventType, id, status, answer)
	}
	return id, nil
}

// post delivers body as Stripe does and returns the status and the body of
// the answer.
func post(ctx context.Context, url string, body []byte, sig string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Stripe-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("post to %s: %w (is the stack running? go tool task dev)", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}
