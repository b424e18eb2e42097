package stripeq_test

import (
	"encoding/base64"
	"fmt"

	"github.com/stripeq/stripeq/pkg/stripeq"
)

// A destination forwards every event (or those of Events) to your own
// app, signed as Standard Webhooks; ConfigFromEnv reads one from
// DESTINATION_URL and DESTINATION_SECRET, and refuses a link-local or
// cloud metadata address and a malformed secret.
func ExampleDestination() {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("example-destination-secret-32-by"))
	env := map[string]string{"DESTINATION_URL": "https://127.0.0.1:3000/stripe-events", "DESTINATION_SECRET": secret,
		"DESTINATION_EVENTS": "invoice.*,customer.created", "DESTINATION_ORDER": "customer"}
	cfg, err := stripeq.ConfigFromEnv(func(k string) string { return env[k] })
	d := cfg.Destinations[0]
	fmt.Println(d.Name, d.Events, d.Concurrency, d.Order, err)

	env = map[string]string{"DESTINATION_URL": "http://169.254.169.254/latest/meta-data/", "DESTINATION_SECRET": "whsec_not-base64"}
	_, err = stripeq.ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(err)
	// Output:
	// default [invoice.* customer.created] 5 customer <nil>
	// invalid configuration:
	//   DESTINATION_SECRET must be a Standard Webhooks secret: whsec_ followed by base64 (the part after whsec_ is not base64)
	// DESTINATION_URL resolves to 169.254.169.254, a link-local or cloud metadata address: refused (DESTINATION_ALLOW_LINK_LOCAL=true allows it)
}
