package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gin-gonic/gin"
)

// A request with both Content-Length and Transfer-Encoding is ambiguous:
// a proxy in front may frame its body by one and the api by the other, and
// smuggle a second request in it (RFC 9112 §6.1 says to treat it as an
// error and close). Go's server accepts it, using Transfer-Encoding, and
// deletes Content-Length before a handler can see it. So the api's
// connections note, as Go reads the bytes, which request on them carried
// both headers, and refuseConflictingLengths answers that request 400 and
// closes the connection.

// framingKey is the context key of a connection's *framingConn.
type framingKey struct{}

// framingListener wraps each accepted connection in a framingConn.
type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

// framingConnContext is the http.Server's ConnContext: it gives each
// request's context its connection's framingConn.
func framingConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

// refuseConflictingLengths answers 400, closing the connection, to a
// request that carried both Content-Length and Transfer-Encoding. Requests
// not read through a framingConn (httptest) pass.
func refuseConflictingLengths() gin.HandlerFunc {
	return func(c *gin.Context) {
		fc, ok := c.Request.Context().Value(framingKey{}).(*framingConn)
		if !ok {
			return
		}
		n := fc.served.Add(1)
		if fc.conflict.Load() == n {
			c.Header("Connection", "close")
			reply(c, http.StatusBadRequest, "bad_request", "both Content-Length and Transfer-Encoding: the body's length is ambiguous")
			c.Abort()
		}
	}
}

// States of a framingConn's parser.
const (
	inHeaders = iota
	inBody
	inChunkSize
	inChunkData
	inChunkEnd
	inTrailer
	stopped // a conflict was found, or the stream is not one Go would serve
)

// maxFramingLine bounds a line the parser buffers: past Go's own header
// limit, Go has refused the request anyway.
const maxFramingLine = 1 << 20

// framingConn follows the HTTP/1.1 framing of the requests read through it,
// enough to tell where each request's header section is.
type framingConn struct {
	net.Conn
	conflict atomic.Int64 // 1-based number of the first request with both headers; 0: none
	served   atomic.Int64 // requests handed to the handler so far

	mu               sync.Mutex // Go's background read may run while a handler runs
	state            int
	line             []byte
	remaining        int64
	sawRequestLine   bool
	hasLength, hasTE bool
	contentLength    int64
	requests         int64
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.scan(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

// scan advances the parser over b.
func (c *framingConn) scan(b []byte) {
	for len(b) > 0 && c.state != stopped {
		switch c.state {
		case inBody, inChunkData:
			k := min(c.remaining, int64(len(b)))
			b, c.remaining = b[k:], c.remaining-k
			if c.remaining == 0 && c.state == inBody {
				c.state = inHeaders
			} else if c.remaining == 0 {
				c.state = inChunkEnd
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.line = append(c.line, b...)
			if len(c.line) > maxFramingLine {
				c.state = stopped
			}
			return
		}
		c.line = append(c.line, b[:i]...)
		b = b[i+1:]
		line := string(bytes.TrimSuffix(c.line, []byte("\r")))
		c.line = c.line[:0]
		c.endLine(line)
	}
}

// endLine handles one complete line.
func (c *framingConn) endLine(line string) {
	switch c.state {
	case inHeaders:
		if line != "" && !c.sawRequestLine {
			c.sawRequestLine = true
			return
		}
		if line != "" {
			name, value, _ := strings.Cut(line, ":")
			switch {
			case strings.EqualFold(strings.TrimSpace(name), "Content-Length"):
				c.hasLength = true
				c.contentLength, _ = strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			case strings.EqualFold(strings.TrimSpace(name), "Transfer-Encoding"):
				c.hasTE = true
			}
			return
		}
		if !c.sawRequestLine {
			return // a blank line before a request
		}
		c.requests++
		switch {
		case c.hasLength && c.hasTE:
			c.conflict.Store(c.requests)
			c.state = stopped
		case c.hasTE:
			c.state = inChunkSize
		case c.contentLength > 0:
			c.state, c.remaining = inBody, c.contentLength
		}
		c.sawRequestLine, c.hasLength, c.hasTE, c.contentLength = false, false, false, 0
	case inChunkSize:
		size, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		switch {
		case err != nil || n < 0:
			c.state = stopped // Go refuses it and closes
		case n == 0:
			c.state = inTrailer
		default:
			c.state, c.remaining = inChunkData, n
		}
	case inChunkEnd:
		c.state = inChunkSize
	case inTrailer:
		if line == "" {
			c.state = inHeaders
		}
	}
}
