package builtin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// mailTimeout bounds one email's whole SMTP conversation.
const mailTimeout = 20 * time.Second

// mailer sends notifications by SMTP.
type mailer struct {
	addr     string // host:port
	host     string
	user     string
	password string
	from     *mail.Address
}

// errInvalidSMTPURL is wrapped by parseMailer's errors; they never quote the
// password.
var errInvalidSMTPURL = errors.New("must look like smtp://user:password@host:port")

// parseMailer reads SMTP_URL (smtp://[user:password@]host[:port], port 587
// by default) and NOTIFY_FROM.
func parseMailer(rawURL, from string) (*mailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, errInvalidSMTPURL
	}
	m := &mailer{host: u.Hostname(), addr: u.Host}
	if u.Port() == "" {
		m.addr = net.JoinHostPort(u.Hostname(), "587")
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
	}
	if m.from, err = mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("NOTIFY_FROM %q is not an email address", from)
	}
	return m, nil
}

// send emails n to n.Email. It uses STARTTLS when the server offers it, and
// authenticates only over TLS or to a server on loopback.
func (m *mailer) send(ctx context.Context, n notification) error {
	to, err := mail.ParseAddress(n.Email)
	if err != nil {
		return fmt.Errorf("recipient %q: %w", n.Email, err)
	}
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	if m.user != "" {
		if err := c.Auth(smtp.PlainAuth("", m.user, m.password, m.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(to.Address); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(m.message(to, n)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message renders the email, its body's line breaks as CR LF (crlf). Its
// Message-ID is derived from the notification, so a receiving server can
// also drop a repeat. Every header
// value goes through headerValue: a CR or LF from an event (a customer's
// name, an invoice ID) cannot end its header and start another.
func (m *mailer) message(to *mail.Address, n notification) []byte {
	var b strings.Builder
	header := func(name, value string) { b.WriteString(name + ": " + headerValue(value) + "\r\n") }
	header("From", m.from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", n.Subject))
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+messageIDPart.Replace(n.Kind)+"."+messageIDPart.Replace(n.DedupeID)+"@stripeq>")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(crlf(n.Body))
	b.WriteString("\r\n")
	return []byte(b.String())
}

// crlf returns body with every line break as CR LF, as SMTP wants: CR LF,
// a bare LF and a bare CR (which a merchant-set field may hold) each count
// as one break, so no CR or LF reaches the email alone.
func crlf(body string) string {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	return strings.ReplaceAll(body, "\n", "\r\n")
}

// messageIDPart drops from a part of a Message-ID what would end or split
// it.
var messageIDPart = strings.NewReplacer("<", "", ">", "", "@", "", " ", "", "\r", "", "\n", "")

// headerValue returns v without CR or LF, so that it stays one header.
func headerValue(v string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(v)
}
