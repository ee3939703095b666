package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestQuickReconnectKeepsTheNewSession: a board that disconnects cleanly
// and connects again at once with the same client id (what devicefw does
// on every update) must find its new session whole: known by client id
// (for its download URL) and receiving what it subscribed to. Mochi
// deletes a clean session's client by id when its connection has ended;
// when the next session of that id registered first, that deleted the new
// one (and could drop its subscriptions), so it got nothing.
func TestQuickReconnectKeepsTheNewSession(t *testing.T) {
	b := startBroker(t, Config{Logger: discard()})
	url := "tcp://" + b.Addr().String()
	const ids, rounds = 40, 15
	var wg sync.WaitGroup
	errs := make(chan error, ids*rounds)
	for i := range ids {
		id := fmt.Sprintf("quick-%d", i)
		wg.Go(func() {
			for r := range rounds {
				got := make(chan struct{}, 1)
				c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).
					SetAutoReconnect(false).SetConnectTimeout(wait).SetCleanSession(true))
				if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
					errs <- fmt.Errorf("%s round %d: connect: %v", id, r, tok.Error())
					return
				}
				topic := "t/" + id
				tok := c.Subscribe(topic, 1, func(paho.Client, paho.Message) {
					select {
					case got <- struct{}{}:
					default:
					}
				})
				if !tok.WaitTimeout(wait) || tok.Error() != nil {
					errs <- fmt.Errorf("%s round %d: subscribe: %v", id, r, tok.Error())
					c.Disconnect(0)
					return
				}
				if _, ok := b.ClientLocalAddr(id); !ok {
					errs <- fmt.Errorf("%s round %d: connected, but ClientLocalAddr does not know it", id, r)
				}
				if err := b.Publish(topic, []byte("x"), false, 1); err != nil {
					errs <- err
				}
				select {
				case <-got:
				case <-time.After(wait):
					errs <- fmt.Errorf("%s round %d: subscribed, but got nothing in %v", id, r, wait)
				}
				c.Disconnect(0) // and at once the next round connects again
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 10 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Errorf("%d of %d sessions broken", n, ids*rounds)
	}
}
