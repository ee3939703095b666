package mqttnet

import (
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// CloseServer shuts srv down without the deadlock in Mochi's Close: it
// disconnects every client (a DISCONNECT, whose reason in MQTT 5 is
// "server shutting down"), waits at most wait until none is connected, and only then calls
// srv.Close. The caller stops accepting first (closes its listeners'
// sockets), so that no client arrives meanwhile.
//
// The deadlock (mochi-mqtt/server issue #488, open in v2.7.9; fixes
// proposed in pull requests #489 and #507): Server.Close has each
// listener call closeListenerClients, whose Clients.GetByListener holds the
// client list's read lock and takes it again through Clients.Len. A client
// connecting (Clients.Add) or leaving (Clients.Delete) between the two
// queues for the write lock, the second RLock queues behind it, and both
// wait forever. A client adds itself after it counts in
// Info.ClientsConnected and deletes itself before it stops counting, so
// with none connected and none able to arrive, Close cannot deadlock. The
// listeners in this package (TCP, and Conns for others) also never call
// closeListenerClients.
func CloseServer(srv *mqtt.Server, wait time.Duration) error {
	for _, cl := range srv.Clients.GetAll() {
		if !cl.Net.Inline && !cl.Closed() {
			_ = srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
	deadline := time.Now().Add(wait)
	for atomic.LoadInt64(&srv.Info.ClientsConnected) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // no event tells when Mochi's client goroutines have ended
	}
	return srv.Close()
}
