package service_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/service"
)

// safetyBound only keeps a broken server from hanging the test: the
// tests wait for the server to close the connection, an event.
const safetyBound = 20 * time.Second

// Issue 14: a client that sends its body slowly, or keeps a connection
// idle, is cut off by the server's timeouts instead of holding a
// descriptor for ever.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	cfg := servicetest.Config(testdb.SQLiteURL(t))
	cfg.Ordo.Http.ReadTimeout = 200 * time.Millisecond
	cfg.Ordo.Http.IdleTimeout = 200 * time.Millisecond
	svc, err := service.New(context.Background(), cfg, service.Options{LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	addr := svc.Addr().String()

	closedByServer := func(t *testing.T, c net.Conn, r io.Reader) {
		t.Helper()
		if err := c.SetReadDeadline(time.Now().Add(safetyBound)); err != nil {
			t.Fatal(err)
		}
		_, err := io.Copy(io.Discard, r)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server kept the connection open for %v", safetyBound)
		}
	}

	t.Run("slow body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers promise 100 bytes; two come, the rest never.
		if _, err := io.WriteString(c, "POST /v1/tenants/acme/jobs HTTP/1.1\r\nHost: ordo\r\nAuthorization: Bearer "+acmeToken+
			"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\""); err != nil {
			t.Fatal(err)
		}
		closedByServer(t, c, c)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: ordo\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		closedByServer(t, c, br) // then nothing is sent
	})
}
