package broker

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"switchyard/internal/idlemem"
)

// BenchmarkIdleClientMemory connects b.N bare MQTT clients (a CONNECT
// written by hand, no client library in the process) and reports the
// broker's heap and goroutine-stack memory per idle client.
//
// Where the stacks go (Mochi v2.7.9, measured 2026-11-25): each client has
// two goroutines, the read loop and WriteLoop. The read loop parks with
// attachClient (a 2,936-byte frame) and Client.Read (1,632 bytes) below
// the poller, about 5.5 KiB in use, so once its stack has grown to 16 KiB
// while a packet is processed it can never shrink (the runtime halves a
// stack only when less than a quarter is in use): the two goroutines hold
// 20 KiB per client, unchanged by four more forced GCs; stock Mochi (its own
// listener, only the allow-all hook, BenchmarkIdleClientMemoryStockMochi)
// holds as much, 20-24 KiB, and 69 KiB of heap. Frame sizes from
// `go tool objdump -s 'v2.\(\*Server\).attachClient$' <binary> | grep SUBQ`.
func BenchmarkIdleClientMemory(b *testing.B) {
	br, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	measureIdleClients(b, br.Addr().String())
}

// BenchmarkIdleClientMemoryStockMochi is the same measurement against
// Mochi as it comes (default options, its own TCP listener, allow-all), to
// tell Mochi's share from ours.
func BenchmarkIdleClientMemoryStockMochi(b *testing.B) {
	addr, _ := startStockMochi(b)
	measureIdleClients(b, addr)
}

// measureIdleClients connects b.N bare MQTT clients to addr (a CONNECT
// written by hand, the CONNACK read) and reports the memory per client.
func measureIdleClients(b *testing.B, addr string) {
	idlemem.PerConn(b, "client", func(i int) (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("c%07d", i)
		// CONNECT, MQTT 3.1.1, clean session, keepalive 60 s.
		payload := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, byte(len(id))}, id...)
		if _, err := c.Write(append([]byte{0x10, byte(len(payload))}, payload...)); err != nil {
			c.Close()
			return nil, err
		}
		ack := make([]byte, 4)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			c.Close()
			return nil, fmt.Errorf("CONNACK %x: %v", ack, err)
		}
		return c, nil
	})
}
