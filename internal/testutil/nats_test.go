package testutil

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestNatsClusterReplicatesRetained starts the three nodes and checks what
// the cluster tests build on: every node answers MQTT, and a retained
// message published on one node is delivered by another. (Kill and
// Restart are exercised by the tests in cluster/.)
func TestNatsClusterReplicatesRetained(t *testing.T) {
	c := StartNatsCluster(t)
	for i := range c.Len() {
		if err := MQTTPing(c.Addr(i), 5*time.Second); err != nil {
			t.Errorf("node %s: %v", c.Name(i), err)
		}
	}
	pub := mqttClient(t, c.URL(0))
	if tok := pub.Publish("t/x", 1, true, "kept"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish on n1: %v", tok.Error())
	}
	sub := mqttClient(t, c.URL(2))
	got := make(chan string, 1)
	// QoS 0: a NATS node delivers it from its own copy of the retained
	// messages, without a JetStream consumer.
	if tok := sub.Subscribe("t/x", 0, func(_ paho.Client, m paho.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe on n3: %v", tok.Error())
	}
	if p := Recv(t, got, 10*time.Second, "the retained t/x on n3"); p != "kept" {
		t.Errorf("retained t/x on n3: got %q, want kept", p)
	}
	if want := fmt.Sprintf("%s,%s,%s", c.URL(1), c.URL(2), c.URL(0)); c.URLs(1) != want {
		t.Errorf("URLs(1) = %s, want %s", c.URLs(1), want)
	}
}

// mqttClient is a paho client connected to url (MQTT 3.1.1, which NATS
// requires), disconnected when the test ends.
func mqttClient(t *testing.T, url string) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetProtocolVersion(4).
		SetClientID(fmt.Sprintf("testutil-%d", time.Now().UnixNano())).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestMQTTPingRefusesWhatIsNotMQTT(t *testing.T) {
	if err := MQTTPing("127.0.0.1:"+FreePort(t), time.Second); err == nil {
		t.Error("MQTTPing to a port nothing listens on: got nil, want an error")
	}
}
