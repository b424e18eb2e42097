package stripeq

import (
	"encoding/base64"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testDestSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("unit-destination-secret-32-bytes"))

// TestDestinationConfig checks the destination settings: the unsafe and
// malformed ones stop the worker, naming the variable and quoting no
// secret; plain http to the network is warned about.
func TestDestinationConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(file, []byte(`[{"name":"billing","url":"https://127.0.0.1:9/b","secret":"`+testDestSecret+`","events":["invoice.*"],"timeout":"3s","concurrency":2,"rate":5}]`), 0o600)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[{"name":"Billing!","url":"https://127.0.0.1:9/b","secret":"`+testDestSecret+`"}]`), 0o600)
	ok := map[string]string{"DESTINATION_URL": "http://127.0.0.1:9/hook", "DESTINATION_SECRET": testDestSecret}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name              string
		env               map[string]string
		wantErr, wantWarn string
	}{
		{"one destination on loopback", ok, "", ""},
		{"a file of destinations", map[string]string{"DESTINATIONS_FILE": file}, "", ""},
		{"both", with("DESTINATIONS_FILE", file), "", ""},
		{"a bad name in the file", map[string]string{"DESTINATIONS_FILE": bad}, "DESTINATIONS_FILE", ""},
		{"an unreadable file", map[string]string{"DESTINATIONS_FILE": bad + ".missing"}, "DESTINATIONS_FILE", ""},
		{"no secret", with("DESTINATION_SECRET", ""), "DESTINATION_SECRET", ""},
		{"a secret that is not base64", with("DESTINATION_SECRET", "whsec_%%%"), "DESTINATION_SECRET", ""},
		{"a Stripe secret", with("DESTINATION_SECRET", "sk_test_abc"), "DESTINATION_SECRET", ""},
		{"a short secret", with("DESTINATION_SECRET", "whsec_c2hvcnQ="), "DESTINATION_SECRET", ""},
		{"not a URL", with("DESTINATION_URL", "ftp://127.0.0.1/x"), "DESTINATION_URL", ""},
		{"the metadata address", with("DESTINATION_URL", "http://169.254.169.254/latest/meta-data/"), "DESTINATION_URL", ""},
		{"a mapped metadata address", with("DESTINATION_URL", "http://[::ffff:169.254.169.254]/"), "DESTINATION_URL", ""},
		{"AWS's IPv6 metadata address", with("DESTINATION_URL", "http://[fd00:ec2::254]/"), "DESTINATION_URL", ""},
		{"IPv6 link-local", with("DESTINATION_URL", "http://[fe80::1]/"), "DESTINATION_URL", ""},
		{"the metadata address, allowed", with("DESTINATION_URL", "https://169.254.169.254/", "DESTINATION_ALLOW_LINK_LOCAL", "true"), "", ""},
		{"plain http on the network", with("DESTINATION_URL", "http://10.1.2.3/hook"), "", "DESTINATION_URL"},
		{"https on the network", with("DESTINATION_URL", "https://10.1.2.3/hook"), "", ""},
		{"a bad event type", with("DESTINATION_EVENTS", "invoice.paid,in voice"), "DESTINATION_EVENTS", ""},
		{"a bad rate", with("DESTINATION_RATE", "-1"), "DESTINATION_RATE", ""},
		{"a bad timeout", with("DESTINATION_TIMEOUT", "soon"), "DESTINATION_TIMEOUT", ""},
		{"ordered by customer", with("DESTINATION_ORDER", "customer"), "", ""},
		{"ordered by something else", with("DESTINATION_ORDER", "invoice"), "DESTINATION_ORDER", ""},
		{"never inline", with("DESTINATION_INLINE", "false"), "", ""},
		{"inline, not a bool", with("DESTINATION_INLINE", "off"), "DESTINATION_INLINE", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := loadConfig(func(k string) string { return tt.env[k] })
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), testDestSecret[6:]) {
				t.Errorf("the error quotes the secret: %v", err)
			}
			w := strings.Join(warnings, "\n")
			if err == nil && ((tt.wantWarn == "") != (w == "") || !strings.Contains(w, tt.wantWarn)) {
				t.Errorf("warnings %q, want one naming %q", w, tt.wantWarn)
			}
		})
	}
}

// TestDestinationInlineSetting: DESTINATION_INLINE=false, and "inline":
// false in DESTINATIONS_FILE, make every delivery of that destination a
// task; unset, inline is allowed.
func TestDestinationInlineSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(file, []byte(`[{"name":"tasks","url":"https://127.0.0.1:9/t","secret":"`+testDestSecret+`","inline":false},
		{"name":"either","url":"https://127.0.0.1:9/e","secret":"`+testDestSecret+`"}]`), 0o600)
	for _, tt := range []struct {
		inline string
		want   map[string]bool // NoInline by name
	}{
		{"", map[string]bool{"default": false, "tasks": true, "either": false}},
		{"false", map[string]bool{"default": true, "tasks": true, "either": false}},
		{"true", map[string]bool{"default": false, "tasks": true, "either": false}},
	} {
		env := map[string]string{"DESTINATION_URL": "http://127.0.0.1:9/hook", "DESTINATION_SECRET": testDestSecret,
			"DESTINATIONS_FILE": file, "DESTINATION_INLINE": tt.inline}
		cfg, _, err := loadConfig(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, d := range cfg.Destinations {
			got[d.Name] = d.config().NoInline
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("DESTINATION_INLINE=%q: NoInline %v, want %v", tt.inline, got, tt.want)
		}
	}
}
