package wsgateway_test

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/devices"
	"switchyard/internal/idlemem"
	"switchyard/wsgateway"
)

// nopBus is a Bus for benchmarks that publish no commands.
type nopBus struct{}

func (nopBus) Publish(string, []byte, bool, byte) error { return nil }
func (nopBus) ClearRetained(string) (int, error)        { return 0, nil }

// BenchmarkFanOut measures events delivered to real WebSocket browsers over
// loopback: each op ingests one count event, and the clock stops when every
// browser has received the last one. Reported: delivered events/s.
func BenchmarkFanOut(b *testing.B) {
	for _, browsers := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("browsers=%d", browsers), func(b *testing.B) {
			// A burst, not a rate: let queues absorb it so throughput is measured.
			gw, err := wsgateway.New(wsgateway.Config{QueueBytes: 256 << 20}, nopBus{})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(gw.Handler())
			defer func() { gw.Close(); srv.Close() }()
			topics := devices.MustTopics("")
			const boards = 100
			for i := range boards {
				gw.Ingest(topics.Status(fmt.Sprintf("b%d", i)), []byte("online"), time.Now())
			}
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
			last := []byte(fmt.Sprintf(`"value":%d}`, 1_000_000_000+b.N))
			var wg sync.WaitGroup
			conns := make([]*websocket.Conn, browsers)
			for i := range conns {
				c, _, err := websocket.DefaultDialer.Dial(url, nil)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = c
			}
			b.ResetTimer()
			start := time.Now()
			for _, c := range conns {
				wg.Add(1)
				go func() { // ends at the last event or a read error
					defer wg.Done()
					defer c.Close()
					_ = c.SetReadDeadline(time.Now().Add(time.Minute))
					for {
						_, data, err := c.ReadMessage()
						if err != nil {
							b.Error(err)
							return
						}
						if bytes.Contains(data, last) {
							return
						}
					}
				}()
			}
			payload := make([]byte, 0, 16)
			for i := 1; i <= b.N; i++ {
				payload = fmt.Appendf(payload[:0], "%d", 1_000_000_000+i)
				gw.Ingest(topics.Count(fmt.Sprintf("b%d", i%boards)), payload, start)
			}
			wg.Wait()
			el := time.Since(start)
			b.ReportMetric(float64(b.N)*float64(browsers)/el.Seconds(), "delivered/s")
		})
	}
}

func BenchmarkEventEncode(b *testing.B) {
	ev := devices.Event{Device: "board-1234", Label: devices.LabelCount, Count: 123456}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
}

// BenchmarkIdleBrowserMemory connects b.N bare browsers (a WebSocket
// handshake written by hand, the snapshot read off the socket, nothing else
// held on the client side but the socket) to a gateway that knows 100
// boards, and reports the gateway's heap and goroutine-stack memory per
// idle browser. The loadgen's figure (RSS delta / N) adds what the runtime
// has not returned to the kernel.
func BenchmarkIdleBrowserMemory(b *testing.B) {
	gw, err := wsgateway.New(wsgateway.Config{}, nopBus{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	defer func() { gw.Close(); srv.Close() }()
	topics := devices.MustTopics("")
	for i := range 100 {
		id := fmt.Sprintf("b%d", i)
		gw.Ingest(topics.Status(id), []byte("online"), time.Now())
		gw.Ingest(topics.LED(id), []byte("OFF"), time.Now())
		gw.Ingest(topics.Count(id), []byte("42"), time.Now())
	}
	idlemem.PerConn(b, "browser", wsgateway.IdleBrowser(strings.TrimPrefix(srv.URL, "http://"), "/ws", 1))
}
