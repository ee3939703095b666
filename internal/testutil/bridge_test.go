package testutil

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestMosquittoBridgeCarriesRetained publishes a retained message on each
// side of the bridge and reads both from each side.
func TestMosquittoBridgeCarriesRetained(t *testing.T) {
	br := StartMosquittoBridge(t, "devices/#")
	for _, side := range []*Mosquitto{br.A, br.B} {
		c := mqttClient(t, side.URL)
		if tok := c.Publish("devices/"+side.Port+"/status", 1, true, "online"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish on %s: %v", side.URL, tok.Error())
		}
	}
	for _, side := range []*Mosquitto{br.A, br.B} {
		got := make(chan string, 10)
		c := mqttClient(t, side.URL)
		// The bridge forwards asynchronously: ask until both are there.
		WaitFor(t, 10*time.Second, func() error {
			seen := map[string]bool{}
			tok := c.Subscribe("devices/+/status", 0, func(_ paho.Client, m paho.Message) {
				if m.Retained() {
					got <- m.Topic()
				}
			})
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				return fmt.Errorf("subscribe on %s: %v", side.URL, tok.Error())
			}
			defer func() { c.Unsubscribe("devices/+/status").WaitTimeout(5 * time.Second) }()
			deadline := time.After(time.Second)
			for len(seen) < 2 {
				select {
				case topic := <-got:
					seen[topic] = true
				case <-deadline:
					return fmt.Errorf("retained on %s: got %v, want both sides' status", side.URL, seen)
				}
			}
			return nil
		})
	}
}
