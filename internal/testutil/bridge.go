package testutil

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MosquittoBridge is two Debian mosquittos, A and B, where B bridges a
// topic pattern both ways to A, as StartMosquittoBridge runs them: a
// client of either sees what a client of the other publishes, retained
// messages included.
type MosquittoBridge struct {
	A, B *Mosquitto
}

// StartMosquittoBridge starts A, then B with a bridge to A for pattern
// (such as "devices/#") in both directions at QoS 1, and waits until the
// bridge is connected (B's retained notification topic
// bridge/to-a/state turns 1). Between two mosquittos
// the bridge keeps the retain flag (try_private), so a late subscriber on
// either side receives the retained messages published on the other.
func StartMosquittoBridge(t testing.TB, pattern string) *MosquittoBridge {
	t.Helper()
	a := startMosquitto(t, false, "")
	const name = "to-a"
	b := startMosquitto(t, false, fmt.Sprintf(`connection %s
address 127.0.0.1:%s
topic %s both 1
try_private true
cleansession true
restart_timeout 1
notification_topic bridge/%s/state
`, name, a.Port, pattern, name))
	state := make(chan string, 10)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetProtocolVersion(4).
		SetClientID(fmt.Sprintf("testutil-bridge-%d", time.Now().UnixNano())).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to mosquitto B: %v", tok.Error())
	}
	defer c.Disconnect(0)
	topic := "bridge/" + name + "/state"
	if tok := c.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		select {
		case state <- string(m.Payload()):
		default: // the test reads them as they come; more are never needed
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe to %s on mosquitto B: %v", topic, tok.Error())
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-state:
			if s == "1" {
				return &MosquittoBridge{A: a, B: b}
			}
		case <-deadline:
			t.Fatalf("the bridge from mosquitto B (%s) to A (%s) did not connect within 10 s", b.URL, a.URL)
		}
	}
}
