package mqttnet

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// TestCloseServer: with clients connected to Mochi's own listener (whose
// Close runs closeListenerClients), CloseServer sends every one a
// DISCONNECT (reason "server shutting down" in MQTT 5) and closes its
// connection, and returns with none connected.
func TestCloseServer(t *testing.T) {
	const wait = 10 * time.Second
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("t", ln)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for i := range 10 {
		version := byte(4)
		if i%2 == 0 {
			version = 5
		}
		c := connect(t, ln.Addr().String(), fmt.Sprintf("c%d", i), version)
		defer c.Close()
		conns = append(conns, c)
	}
	_ = ln.Close() // the caller stops accepting first

	closed := make(chan error, 1)
	go func() { closed <- CloseServer(srv, wait) }() // ends when CloseServer returns
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("CloseServer: %v", err)
		}
	case <-time.After(2 * wait):
		t.Fatal("CloseServer did not return")
	}
	if n := atomic.LoadInt64(&srv.Info.ClientsConnected); n != 0 {
		t.Errorf("clients connected after CloseServer: got %d, want 0", n)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		pk, err := readPacket(c)
		if pk == nil || pk[0] != 0xE0 {
			t.Errorf("client %d: got packet %x, %v; want DISCONNECT", i, pk, err)
		} else if i%2 == 0 && (len(pk) < 2 || pk[1] != 0x8B) {
			t.Errorf("MQTT 5 client %d: got DISCONNECT %x, want reason 0x8B (server shutting down)", i, pk)
		}
		if pk, err := readPacket(c); err != io.EOF {
			t.Errorf("client %d after DISCONNECT: got packet %x, %v; want the connection closed", i, pk, err)
		}
	}
}

// connect opens a connection and completes an MQTT CONNECT (clean session,
// keepalive 60 s) of the protocol version given (4 is 3.1.1, 5 is 5.0).
func connect(t *testing.T, addr, id string, version byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte{0, 4, 'M', 'Q', 'T', 'T', version, 2, 0, 60}
	if version == 5 {
		payload = append(payload, 0) // no properties
	}
	payload = append(append(payload, 0, byte(len(id))), id...)
	if _, err := c.Write(append([]byte{0x10, byte(len(payload))}, payload...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	ack, err := readPacket(c)
	if err != nil || ack[0] != 0x20 || ack[2] != 0 {
		t.Fatalf("CONNACK for %s: got %x, %v", id, ack, err)
	}
	return c
}

// readPacket reads one MQTT packet shorter than 128 bytes and returns its
// first byte followed by its body.
func readPacket(c net.Conn) ([]byte, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(c, head); err != nil {
		return nil, err
	}
	if head[1] >= 128 {
		return nil, fmt.Errorf("packet %x: longer than this test reads", head)
	}
	body := make([]byte, head[1])
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	return append(head[:1], body...), nil
}
