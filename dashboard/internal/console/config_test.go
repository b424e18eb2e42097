package console

import (
	"fmt"
	"strings"
	"testing"
)

// TestConfig checks the dashboard's settings that touch authentication or
// exposure: each unsafe one stops it, naming the variable; a network
// address without TLS in front is warned about.
func TestConfig(t *testing.T) {
	const pass, viewPass = "operator-password", "viewer-password"
	op := func(more ...string) map[string]string {
		env := map[string]string{"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": pass}
		for i := 0; i+1 < len(more); i += 2 {
			env[more[i]] = more[i+1]
		}
		return env
	}
	tests := []struct {
		name     string
		env      map[string]string
		wantErr  string // the variable the error names; "" for none
		wantWarn string // the variable a warning names; "" for none
	}{
		{"loopback without credentials: a one-time password", map[string]string{}, "", ""},
		{"operator", op(), "", ""},
		{"operator and viewer", op("DASHBOARD_VIEWER_USER", "viewer", "DASHBOARD_VIEWER_PASSWORD", viewPass), "", ""},
		{"network without credentials", map[string]string{"DASHBOARD_ADDR": ":8081"}, "DASHBOARD_ADDR", ""},
		{"network with credentials, no TLS in front", op("DASHBOARD_ADDR", "0.0.0.0:8081"), "", "DASHBOARD_ADDR"},
		{"user without password", map[string]string{"DASHBOARD_USER": "ops"}, "DASHBOARD_PASSWORD", ""},
		{"password without user", map[string]string{"DASHBOARD_PASSWORD": pass}, "DASHBOARD_USER", ""},
		{"blank user", map[string]string{"DASHBOARD_USER": "  ", "DASHBOARD_PASSWORD": pass}, "DASHBOARD_USER", ""},
		{"blank password", map[string]string{"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": " \t"}, "DASHBOARD_PASSWORD", ""},
		{"blank user and password on loopback", map[string]string{"DASHBOARD_USER": " ", "DASHBOARD_PASSWORD": " "}, "DASHBOARD_PASSWORD", ""},
		{"password with a trailing newline", op("DASHBOARD_PASSWORD", pass+"\n"), "DASHBOARD_PASSWORD", ""},
		{"short password", op("DASHBOARD_PASSWORD", "hunter2"), "DASHBOARD_PASSWORD", ""},
		{"password equal to the user name", op("DASHBOARD_USER", "administrator", "DASHBOARD_PASSWORD", "Administrator"), "DASHBOARD_PASSWORD", ""},
		{"viewer without password", op("DASHBOARD_VIEWER_USER", "viewer"), "DASHBOARD_VIEWER_PASSWORD", ""},
		{"viewer password without user", op("DASHBOARD_VIEWER_PASSWORD", viewPass), "DASHBOARD_VIEWER_USER", ""},
		{"blank viewer", op("DASHBOARD_VIEWER_USER", " ", "DASHBOARD_VIEWER_PASSWORD", viewPass), "DASHBOARD_VIEWER_USER", ""},
		{"viewer named as the operator", op("DASHBOARD_VIEWER_USER", "ops", "DASHBOARD_VIEWER_PASSWORD", viewPass), "DASHBOARD_VIEWER_USER", ""},
		{"viewer named as the operator, other case", op("DASHBOARD_VIEWER_USER", "OPS", "DASHBOARD_VIEWER_PASSWORD", viewPass), "DASHBOARD_VIEWER_USER", ""},
		{"viewer with the operator's password", op("DASHBOARD_VIEWER_USER", "viewer", "DASHBOARD_VIEWER_PASSWORD", pass), "DASHBOARD_VIEWER_PASSWORD", ""},
		{"short viewer password", op("DASHBOARD_VIEWER_USER", "viewer", "DASHBOARD_VIEWER_PASSWORD", "view"), "DASHBOARD_VIEWER_PASSWORD", ""},
		{"a month-long session", op("DASHBOARD_SESSION_TTL", "720h"), "", ""},
		{"a year-long session", op("DASHBOARD_SESSION_TTL", "8760h"), "DASHBOARD_SESSION_TTL", ""},
		{"Prometheus not a URL", op("PROMETHEUS_URL", "prometheus:9090"), "PROMETHEUS_URL", ""},
		{"trusted proxies", op("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1, ::1, fd00::/8"), "", ""},
		{"a trusted proxy that is no address", op("TRUSTED_PROXIES", "10.0.0.1, proxy.internal"), "TRUSTED_PROXIES", ""},
		{"a trusted proxy with a bad mask", op("TRUSTED_PROXIES", "10.0.0.0/33"), "TRUSTED_PROXIES", ""},
		{"every IPv4 address a trusted proxy", op("TRUSTED_PROXIES", "0.0.0.0/0"), "TRUSTED_PROXIES", ""},
		{"every IPv6 address a trusted proxy", op("TRUSTED_PROXIES", "10.0.0.1, ::/0"), "TRUSTED_PROXIES", ""},
		// The same space, or most of it, in pieces.
		{"IPv4 in two halves", op("TRUSTED_PROXIES", "0.0.0.0/1,128.0.0.0/1"), "TRUSTED_PROXIES", ""},
		{"IPv6 in two halves", op("TRUSTED_PROXIES", "::/1,8000::/1"), "TRUSTED_PROXIES", ""},
		{"half of IPv4", op("TRUSTED_PROXIES", "128.0.0.0/1"), "TRUSTED_PROXIES", ""},
		{"IPv4 in sixteen pieces", op("TRUSTED_PROXIES", sixteenths()), "TRUSTED_PROXIES", ""},
		{"IPv4's first sixteenth, twice and nested", op("TRUSTED_PROXIES", "0.0.0.0/4, 0.0.0.0/5, 8.0.0.0/5"), "TRUSTED_PROXIES", ""},
		{"every global IPv6 address", op("TRUSTED_PROXIES", "2000::/3"), "TRUSTED_PROXIES", ""},
		{"every private network", op("TRUSTED_PROXIES", "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7"), "", ""},
		{"most of a sixteenth of IPv4", op("TRUSTED_PROXIES", "0.0.0.0/5, 8.0.0.0/6, 12.0.0.0/7, 14.0.0.0/8"), "", ""},
		{"a Redis password in the clear to a remote host", op("REDIS_URL", "redis://:redis-pw@10.255.255.1"), "", "REDIS_URL"},
		{"a Redis password on loopback", op("REDIS_URL", "redis://:redis-pw@127.0.0.1:6379/2"), "", ""},
		{"hosts", op("DASHBOARD_HOSTS", "dash.example.com, localhost:8081, [::1]:8081, 10.0.0.5"), "", ""},
		{"a host with a path", op("DASHBOARD_HOSTS", "dash.example.com/x"), "DASHBOARD_HOSTS", ""},
		{"a host with a bad port", op("DASHBOARD_HOSTS", "dash.example.com:http"), "DASHBOARD_HOSTS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				for _, secret := range []string{pass, viewPass, "hunter2"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error quotes a password: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if len(tt.env) == 0 && (!cfg.Generated || len(cfg.Password) < 20) {
				t.Errorf("no one-time password generated: %+v", cfg)
			}
			warned := strings.Join(cfg.Warnings, "\n")
			if tt.wantWarn == "" && warned != "" {
				t.Errorf("warnings %q, want none", warned)
			}
			if tt.wantWarn != "" && !strings.HasPrefix(warned, tt.wantWarn+" ") {
				t.Errorf("warnings %q, want one naming %s", warned, tt.wantWarn)
			}
		})
	}
}

// sixteenths is IPv4 as sixteen /4 networks, comma-separated.
func sixteenths() string {
	var parts []string
	for i := range 16 {
		parts = append(parts, fmt.Sprintf("%d.0.0.0/4", i*16))
	}
	return strings.Join(parts, ",")
}
