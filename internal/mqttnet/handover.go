package mqttnet

import (
	"bytes"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// HandOver is a Mochi hook that orders a clean session's end before the
// next session of the same client id begins. The control plane's broker
// and the test broker of package boardtest both add it (NewHandOver).
//
// Mochi ends a clean session on its client's goroutine after the
// connection has closed: it unsubscribes the client's filters and deletes
// the client from its list, both by client id. A board that disconnects
// and connects again at once (devicefw does, on every update) can have its
// new session registered before the old one's goroutine gets there; the
// old one then deletes the new client (no message reaches it any more, and
// the control plane no longer finds it by id) and may drop its new
// subscriptions. So a new session whose id still names a clean session
// ends that one and waits, on its own goroutine and only for as long as that
// teardown takes (microseconds; at most handOverWait), before it is
// registered. TestQuickReconnectKeepsTheNewSession shows the failure
// without it.
type HandOver struct {
	mqtt.HookBase
	srv *mqtt.Server
}

// NewHandOver returns the hook for srv; add it with srv.AddHook.
func NewHandOver(srv *mqtt.Server) *HandOver { return &HandOver{srv: srv} }

// handOverWait bounds how long a new session waits for the old one's
// teardown.
const handOverWait = time.Second

func (h *HandOver) ID() string { return "switchyard-handover" }

func (h *HandOver) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSessionEstablish}, []byte{b})
}

// OnSessionEstablish runs after the client was authenticated, just before
// Mochi takes over or registers its session. A clean session of the same
// id still registered is ended first (as Mochi's takeover would: it is
// sent DISCONNECT, session taken over, and its Will goes out), and its
// teardown is waited for; a persistent one is left to Mochi's takeover,
// which inherits it and deletes nothing.
func (h *HandOver) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	old, ok := h.srv.Clients.Get(cl.ID)
	if !ok || old == cl || old.IsTakenOver() || !endsWithConnection(old) {
		return
	}
	if !old.Closed() {
		_ = h.srv.DisconnectClient(old, packets.ErrSessionTakenOver) // its connection may be gone already
	}
	deadline := time.Now().Add(handOverWait)
	pause := 20 * time.Microsecond
	for {
		if cur, ok := h.srv.Clients.Get(cl.ID); !ok || cur != old {
			return
		}
		if time.Now().After(deadline) {
			return // Mochi's takeover handles it as before
		}
		// No event marks the end of another client's teardown: poll it,
		// briefly, on this client's own goroutine.
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// endsWithConnection reports whether Mochi deletes cl's session when its
// connection ends (a clean 3.1.1 session, or a 5 session with no expiry).
func endsWithConnection(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval == 0
	}
	return cl.Properties.Clean
}
