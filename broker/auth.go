package broker

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/auth"
)

// Authorizer is what the broker needs to know of users and rights.
type Authorizer interface {
	// Login's remote is the client's address, for throttling.
	Login(name, password, remote string) (auth.Identity, error)
	Anonymous(remoteAddr string) (auth.Identity, error)
	CanUseClientID(id auth.Identity, clientID string) bool
	CanPublish(id auth.Identity, topic string) bool
	CanSubscribe(id auth.Identity, filter string) bool
}

// authHook enforces users, roles and anonymous access on MQTT clients. It
// closes holes Mochi leaves open by default: a Will outside the client's
// rights is refused at CONNECT, a client id whose session is live (its
// client connected, or away with a kept session) can only be taken over by
// the same user, and filters are checked level by level so no wildcard
// escapes the client's tree (see auth.CanSubscribe).
type authHook struct {
	mqtt.HookBase
	az  Authorizer
	srv *mqtt.Server
	// logins maps a client id to the login of the connection that holds
	// its session, from admission until the session ends: with the
	// connection for a clean session, at expiry for a kept one, or when
	// a later connection of the same user takes it over. A kept session
	// needs it while its client is away: Mochi checks every delivery
	// (OnACLCheck), and a message refused there is not queued.
	logins sync.Map // client id → *login

	log         *slog.Logger
	onThrottled func(remote, name string) // Config.OnThrottled; nil: none
	throttled   atomic.Uint64             // CONNECTs refused by throttling

	// kicks counts DisconnectUser calls; kicked holds, for each name it
	// was called for, the count at its latest call. A CONNECT that a kick
	// of its user overlapped is refused (see admit).
	kicks    atomic.Uint64
	kickedMu sync.Mutex
	kicked   map[string]uint64 // guarded by kickedMu
}

// login is the identity an admitted connection logged in with.
type login struct {
	cl      *mqtt.Client
	id      auth.Identity
	revoked atomic.Bool // DisconnectUser: the session may do nothing more until its user logs in again
}

// identity returns the login holding cl's session: cl's own, or, while a
// later connection of the same user takes cl's session over, that one's.
// A revoked login is none.
func (h *authHook) identity(cl *mqtt.Client) (auth.Identity, bool) {
	v, ok := h.logins.Load(cl.ID)
	if !ok || v.(*login).revoked.Load() {
		return auth.Identity{}, false
	}
	return v.(*login).id, true
}

// forget drops cl's login when cl's session ends, unless a later
// connection has taken the session over.
func (h *authHook) forget(cl *mqtt.Client) {
	if v, ok := h.logins.Load(cl.ID); ok && v.(*login).cl == cl {
		h.logins.CompareAndDelete(cl.ID, v)
	}
}

// OnPacketEncode completes an MQTT 5 CONNACK that admits a client with
// what Mochi leaves out: the maximum packet size the broker accepts, and,
// for an anonymous client, that its session expires with the connection
// (see admit). Every other packet passes unchanged.
func (h *authHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack || cl.Properties.ProtocolVersion < 5 || pk.ReasonCode >= packets.ErrUnspecifiedError.Code {
		return pk
	}
	pk.Properties.MaximumPacketSize = h.srv.Options.Capabilities.MaximumPacketSize
	if id, ok := h.identity(cl); ok && id.Anonymous {
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 0, true
	}
	return pk
}

func (h *authHook) ID() string { return "switchyard-auth" }

func (h *authHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnPacketEncode:
		return true
	}
	return false
}

// OnConnect authenticates the client and checks its client id, its Will and
// any takeover. A refusal is answered with a CONNACK carrying the reason
// (Mochi would otherwise close the connection without one).
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	code := h.admit(cl, pk)
	if code == packets.CodeSuccess {
		return nil
	}
	_ = h.srv.SendConnack(cl, connackCode(cl, code), false, nil) // the client may be gone already
	return code
}

// connackCode turns a refusal into the return code the client's protocol
// version knows. Mochi maps v5 codes for v3 clients only partly (0x87 "not
// authorized" would go out as is, which MQTT 3.1.1 clients misread).
func connackCode(cl *mqtt.Client, code packets.Code) packets.Code {
	if cl.Properties.ProtocolVersion >= 5 {
		return code
	}
	switch code {
	case packets.ErrBadUsernameOrPassword:
		return packets.Code{Code: 0x04, Reason: code.Reason} // bad user name or password
	case packets.ErrNotAuthorized:
		return packets.Err3NotAuthorized
	case packets.ErrClientIdentifierNotValid:
		return packets.Err3ClientIdentifierNotValid
	}
	return packets.Err3ServerUnavailable
}

func (h *authHook) admit(cl *mqtt.Client, pk packets.Packet) packets.Code {
	var id auth.Identity
	var err error
	kicks := h.kicks.Load()
	if pk.Connect.UsernameFlag && len(pk.Connect.Username) > 0 {
		name := string(pk.Connect.Username)
		id, err = h.az.Login(name, string(pk.Connect.Password), cl.Net.Remote)
		var te *auth.ThrottledError
		if errors.As(err, &te) {
			h.noteThrottled(cl, name, te)
			return packets.ErrNotAuthorized
		}
		if err != nil {
			return packets.ErrBadUsernameOrPassword
		}
	} else if id, err = h.az.Anonymous(cl.Net.Remote); err != nil {
		return packets.ErrNotAuthorized
	}
	if !h.az.CanUseClientID(id, cl.ID) {
		return packets.ErrClientIdentifierNotValid
	}
	if pk.Connect.WillFlag && !h.az.CanPublish(id, pk.Connect.WillTopic) {
		return packets.ErrNotAuthorized
	}
	if existing, ok := h.srv.Clients.Get(cl.ID); ok {
		// Connected, or away with its session kept: a login is held
		// until the session ends (revoked or not: only its user may
		// take it over).
		if v, ok := h.logins.Load(existing.ID); ok {
			if p := v.(*login).id; p.Name != id.Name || p.Anonymous != id.Anonymous {
				return packets.ErrClientIdentifierNotValid
			}
		}
	}
	if id.Anonymous {
		// No session outlives an anonymous client's connection: a
		// persistent session keeps its subscriptions matched (a copy of
		// every message, for each such session) for up to a day, and
		// anybody local could leave thousands behind. Named users keep
		// theirs.
		cl.Properties.Clean = true
		cl.Properties.Props.SessionExpiryInterval = 0
		cl.Properties.Props.SessionExpiryIntervalFlag = false
	}
	l := &login{cl: cl, id: id}
	prev, hadPrev := h.logins.Swap(cl.ID, l)
	if h.kicks.Load() != kicks && !id.Anonymous && h.kickedSince(id.Name, kicks) {
		// DisconnectUser ran for this user while it logged in (against
		// the list before the change, perhaps), and may have missed it.
		l.revoked.Store(true)
		if hadPrev {
			h.logins.CompareAndSwap(cl.ID, l, prev)
		} else {
			h.logins.CompareAndDelete(cl.ID, l)
		}
		return packets.ErrNotAuthorized
	}
	return packets.CodeSuccess
}

// OnConnectAuthenticate lets in exactly the clients OnConnect admitted.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	v, ok := h.logins.Load(cl.ID)
	return ok && v.(*login).cl == cl && !v.(*login).revoked.Load()
}

// noteThrottled counts a CONNECT refused because its address failed too
// often, and reports the first of each interval (Config.OnThrottled).
func (h *authHook) noteThrottled(cl *mqtt.Client, name string, te *auth.ThrottledError) {
	h.throttled.Add(1)
	if !te.First {
		return
	}
	h.log.Warn("mqtt logins refused: too many failures from this address", "remote", cl.Net.Remote, "name", name, "retry_after", te.RetryAfter)
	if h.onThrottled != nil {
		h.onThrottled(cl.Net.Remote, name)
	}
}

// disconnectGrace is how long a client kicked by DisconnectUser has to
// take its DISCONNECT (MQTT 5) before its connection is closed anyway.
const disconnectGrace = 250 * time.Millisecond

// kick disconnects every client logged in as name and revokes the logins
// of its sessions kept while away (see DisconnectUser).
func (h *authHook) kick(name string) int {
	h.kickedMu.Lock()
	if h.kicked == nil {
		h.kicked = map[string]uint64{}
	}
	h.kicked[name] = h.kicks.Add(1)
	h.kickedMu.Unlock()
	n := 0
	h.logins.Range(func(_, v any) bool {
		l := v.(*login)
		if l.id.Anonymous || l.id.Name != name {
			return true
		}
		l.revoked.Store(true)
		if !l.cl.Closed() {
			n++
			h.disconnect(l.cl)
		}
		return true
	})
	return n
}

// kickedSince reports whether DisconnectUser ran for name after the
// kicks count was at.
func (h *authHook) kickedSince(name string, at uint64) bool {
	h.kickedMu.Lock()
	defer h.kickedMu.Unlock()
	return h.kicked[name] > at
}

// disconnect ends cl's connection without waiting on it: an MQTT 5 client
// is told why (DISCONNECT, not authorized) and closed; an MQTT 3 client,
// which has no such packet, is closed.
func (h *authHook) disconnect(cl *mqtt.Client) {
	if cl.Properties.ProtocolVersion < 5 {
		cl.Stop(packets.ErrNotAuthorized)
		return
	}
	// Writing may wait on a client that does not read: the timer closes
	// the connection after disconnectGrace, which ends the write.
	time.AfterFunc(disconnectGrace, func() { cl.Stop(packets.ErrNotAuthorized) })
	go func() { _ = h.srv.DisconnectClient(cl, packets.ErrNotAuthorized) }() // ends with the write: at once, or when the timer closes the connection
}

// OnACLCheck checks publishes (write) and subscriptions and deliveries,
// also deliveries to a kept session whose client is away.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	id, ok := h.identity(cl)
	if !ok {
		return false
	}
	if write {
		return h.az.CanPublish(id, topic)
	}
	return h.az.CanSubscribe(id, topic)
}

// OnDisconnect forgets the login of a session that ends with its
// connection (expire); a kept session keeps it until OnClientExpired.
func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire {
		h.forget(cl)
	}
}

// OnClientExpired forgets the login of a kept session Mochi drops.
func (h *authHook) OnClientExpired(cl *mqtt.Client) {
	h.forget(cl)
}

// DisconnectUser disconnects every MQTT client logged in as the user
// name, and returns how many were connected: an MQTT 5 client gets a
// DISCONNECT (not authorized) first, and every connection is closed within
// disconnectGrace. A session kept for such a client while it is away gets
// nothing more until its user logs in again. The caller has changed the
// user list first (auth.Authority.SetAccounts): a removed or disabled
// user's next CONNECT is refused there, and a CONNECT of that user under
// way while DisconnectUser runs is refused too. With no Authorizer
// (Config.Auth nil) there are no users: it returns 0.
func (b *Broker) DisconnectUser(name string) int {
	if b.auth == nil || name == "" {
		return 0
	}
	return b.auth.kick(name)
}

// Throttled returns the number of CONNECTs refused so far because their
// address failed too often (for /metrics).
func (b *Broker) Throttled() uint64 {
	if b.auth == nil {
		return 0
	}
	return b.auth.throttled.Load()
}
