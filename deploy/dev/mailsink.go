package main

import (
	"io"
	"mime"
	"net"
	"net/mail"
	"sync"

	"github.com/emersion/go-smtp"
)

// mailSink is a local SMTP server that prints every email it receives. The
// demo stops and starts it to show notifications being retried.
type mailSink struct {
	addr string
	out  func(format string, args ...any)

	mu  sync.Mutex
	srv *smtp.Server
}

// startMailSink listens on a free loopback port.
func startMailSink(out func(format string, args ...any)) (*mailSink, error) {
	m := &mailSink{out: out}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m.addr = l.Addr().String()
	m.serve(l)
	return m, nil
}

func (m *mailSink) serve(l net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{m: m}, nil }))
	srv.Domain = "localhost"
	m.mu.Lock()
	m.srv = srv
	m.mu.Unlock()
	go srv.Serve(l)
}

// stop closes the server: deliveries fail until start.
func (m *mailSink) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv != nil {
		m.srv.Close()
		m.srv = nil
	}
}

// start listens again on the same address.
func (m *mailSink) start() error {
	l, err := net.Listen("tcp", m.addr)
	if err != nil {
		return err
	}
	m.serve(l)
	return nil
}

type sinkSession struct {
	m  *mailSink
	to []string
}

func (s *sinkSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }
func (s *sinkSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	s.m.out("email to %v: %s", s.to, subject)
	return nil
}
func (s *sinkSession) Reset()        { s.to = nil }
func (s *sinkSession) Logout() error { return nil }
