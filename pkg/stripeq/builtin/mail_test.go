package builtin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// mailbox is a real SMTP server (go-smtp) on loopback that keeps what it
// receives, with PLAIN authentication.
type mailbox struct {
	addr string
	srv  *smtp.Server

	mu       sync.Mutex
	messages []message
}

type message struct {
	from string
	to   []string
	data string
}

func startMailbox(t *testing.T, addr string) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{mb: mb}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mb.addr, mb.srv = l.Addr().String(), srv
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return mb
}

func (mb *mailbox) received() []message {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]message(nil), mb.messages...)
}

type session struct {
	mb     *mailbox
	authed bool
	msg    message
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != "mail-secret" {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.msg.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = string(b)
	s.mb.mu.Lock()
	s.mb.messages = append(s.mb.messages, s.msg)
	s.mb.mu.Unlock()
	return nil
}
func (s *session) Reset()        { s.msg = message{} }
func (s *session) Logout() error { return nil }

func TestEmailNotifications(t *testing.T) {
	mb := startMailbox(t, "127.0.0.1:0")
	m, err := ParseMailer("smtp://mailer:mail-secret@"+mb.addr, "Billing <billing@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	w, db := setupWith(t, stripeq.Config{}, Options{Mailer: m})

	process(t, w, stripetest.Fixture("customer.created"))
	for range 2 { // a retry or re-run sends nothing again
		if err := process(t, w, stripetest.Fixture("invoice.finalized")); err != nil {
			t.Fatal(err)
		}
	}
	got := mb.received()
	if len(got) != 1 {
		t.Fatalf("%d emails, want 1", len(got))
	}
	e := got[0]
	if e.from != "billing@example.com" || len(e.to) != 1 || e.to[0] != "jenny.rosen@example.com" {
		t.Errorf("email from %s to %v", e.from, e.to)
	}
	for _, want := range []string{"Subject: Your invoice for 20.00 USD", "https://invoice.stripe.com/i/acct_stripeq_demo/test_stripeq_demo_in", "Message-ID: <invoice.evt_stripeq_invoice_finalized@stripeq>"} {
		if !strings.Contains(e.data, want) {
			t.Errorf("email lacks %q:\n%s", want, e.data)
		}
	}

	// The SMTP server goes away: the task fails (and will retry), the
	// stream entry is written once, and the email goes out when it is back.
	mb.srv.Close()
	if err := process(t, w, stripetest.Fixture("invoice.paid")); err == nil {
		t.Fatal("no error while the SMTP server is down")
	}
	back := startMailbox(t, mb.addr)
	if err := process(t, w, stripetest.Fixture("invoice.paid")); err != nil {
		t.Fatalf("after the SMTP server is back: %v", err)
	}
	if n := len(back.received()); n != 1 {
		t.Errorf("%d emails after the retry, want 1", n)
	}
	paid := 0
	for _, n := range notifications(t, db.Client) {
		if n.EventID == "evt_stripeq_invoice_paid" {
			paid++
		}
	}
	if paid != 1 {
		t.Errorf("%d stream entries for invoice.paid, want 1", paid)
	}
	if emailed, _ := db.Client.HGet(context.Background(), records.NotifiedKey(records.KindInvoice, "evt_stripeq_invoice_paid"), "emailed").Result(); emailed != "1" {
		t.Errorf("emailed = %q, want 1", emailed)
	}
}

func TestParseMailer(t *testing.T) {
	for _, tt := range []struct {
		url, from string
		ok        bool
	}{
		{"smtp://u:p@mail.example.com:2525", "a@example.com", true},
		{"smtp://mail.example.com", "Billing <a@example.com>", true},
		{"smtps://mail.example.com", "a@example.com", false},
		{"mail.example.com:25", "a@example.com", false},
		{"smtp://mail.example.com", "not an address", false},
	} {
		m, err := parseMailer(tt.url, tt.from)
		if (err == nil) != tt.ok {
			t.Errorf("parseMailer(%q, %q) = %v, %v", tt.url, tt.from, m, err)
		}
		if err != nil && strings.Contains(err.Error(), ":p@") {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

// TestMailHeadersHoldNoLineBreaks renders an email whose every header
// value carries a CR LF and a header after it, from the event (the
// notification's kind and dedupe ID, which make the Message-ID, and its
// subject) and from the recipient, and checks that the email has exactly
// its own headers.
func TestMailHeadersHoldNoLineBreaks(t *testing.T) {
	m, err := parseMailer("smtp://127.0.0.1:2525", "stripeq <billing@localhost>")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		to   *mail.Address
		n    notification
	}{
		{"dedupe ID", &mail.Address{Address: "jenny@example.com"}, notification{Kind: records.KindPaymentFailed, DedupeID: "in_1\r\nBcc: evil@example.com", Subject: "s"}},
		{"bare LF in dedupe ID", &mail.Address{Address: "jenny@example.com"}, notification{Kind: records.KindPaymentFailed, DedupeID: "in_1\nBcc: evil@example.com", Subject: "s"}},
		{"kind", &mail.Address{Address: "jenny@example.com"}, notification{Kind: "k\r\nBcc: evil@example.com", DedupeID: "in_1", Subject: "s"}},
		{"subject", &mail.Address{Address: "jenny@example.com"}, notification{Kind: records.KindPaymentFailed, DedupeID: "in_1", Subject: "Hi\r\nBcc: evil@example.com"}},
		{"recipient's name", &mail.Address{Name: "Jenny\r\nBcc: evil@example.com", Address: "jenny@example.com"}, notification{Kind: records.KindPaymentFailed, DedupeID: "in_1", Subject: "s"}},
	}
	want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := m.message(tt.to, tt.n)
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("the email does not parse: %v\n%s", err, raw)
			}
			got := slices.Sorted(maps.Keys(msg.Header))
			if !slices.Equal(got, want) {
				t.Errorf("headers %v, want %v:\n%s", got, want, raw)
			}
			head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			if bytes.Contains(head, []byte("\nBcc")) || bytes.Count(head, []byte("\n")) != len(want)-1 {
				t.Errorf("the header section has a line of its own for the injected header:\n%s", head)
			}
		})
	}
}

// TestMailBodyLineEndings: whatever line endings a body carries (a
// merchant-set field may hold a bare CR), the email's body has only CR LF
// pairs, one per line break, as SMTP wants.
func TestMailBodyLineEndings(t *testing.T) {
	m, err := parseMailer("smtp://127.0.0.1:2525", "stripeq <billing@localhost>")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, body, want string }{
		{"LF", "Hello\nThe invoice", "Hello\r\nThe invoice\r\n"},
		{"CR LF", "Hello\r\nThe invoice", "Hello\r\nThe invoice\r\n"},
		{"bare CR", "Hello\rThe invoice", "Hello\r\nThe invoice\r\n"},
		{"bare CR then a header-like line", "Memo: x\r.\r\nBcc: evil@example.com", "Memo: x\r\n.\r\nBcc: evil@example.com\r\n"},
		{"CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n"},
		{"LF CR", "a\n\rb", "a\r\n\r\nb\r\n"},
		{"trailing CR", "a\r", "a\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := string(m.message(&mail.Address{Address: "jenny@example.com"}, notification{Kind: records.KindPaymentFailed, DedupeID: "in_1", Subject: "s", Body: tt.body}))
			_, body, _ := strings.Cut(raw, "\r\n\r\n")
			if body != tt.want {
				t.Errorf("body %q, want %q", body, tt.want)
			}
		})
	}
}
