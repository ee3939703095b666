// The hub: the WebSocket handshake, the registry of connected browsers,
// and what is done to all of them (pings, logout).

package wsgateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/internal/httpapi"
	"switchyard/internal/origin"
)

// writeBufferPool keeps gorilla from allocating each connection a write
// buffer: its Conn writes nothing (it is dropped after the handshake;
// frame.go encodes the frames), so the pool stays empty.
var writeBufferPool sync.Pool

func newUpgrader(allowed []string) *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  256, // for a Conn dropped after the handshake
		WriteBufferSize: 4096,
		WriteBufferPool: &writeBufferPool,
		CheckOrigin:     func(r *http.Request) bool { return origin.Allowed(r, allowed) },
		// permessage-deflate without context takeover: big broadcasts are
		// sent compressed to browsers that offer it (deflate.go).
		EnableCompression: true,
	}
}

// serveWS handles /ws (device == "") and /ws/<id>.
func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request, device string) {
	id, sid, err := g.identifySession(r, true)
	if errors.Is(err, auth.ErrThrottled) {
		refuseIdentity(w, r, err)
		return
	}
	if err != nil {
		httpapi.Error(w, http.StatusUnauthorized, "%v: log in, or pass ?token=", err)
		return
	}
	if !id.CanWatch() {
		httpapi.Error(w, http.StatusForbidden, "role %s may not watch", id.Role)
		return
	}
	if device != "" {
		if _, known := g.device(device); !devices.ValidID(device) || !known {
			httpapi.Error(w, http.StatusNotFound, "unknown device %q", device)
			return
		}
	}
	if !origin.Allowed(r, g.cfg.AllowedOrigins) {
		httpapi.Error(w, http.StatusForbidden, "origin %q not allowed (list it in http.allowed_origins)", r.Header.Get("Origin"))
		return
	}
	if err := g.Healthy(); err != nil {
		httpapi.Error(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	if max := g.cfg.MaxBrowsers; max > 0 && g.browserCount() >= max {
		httpapi.Error(w, http.StatusServiceUnavailable, "too many browsers (limit %d)", max)
		return
	}
	// gorilla does the handshake; its Conn is not kept: frames are read
	// and written by reader.go and writer.go, on its connection.
	conn, err := g.upg.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	c := &client{
		g:       g,
		ws:      newWSConn(conn.NetConn()),
		device:  device,
		remote:  r.RemoteAddr,
		id:      id,
		session: sid,
		deflate: offersDeflate(r),
	}
	if code, reason := g.register(c); code != 0 {
		// Something changed during the handshake (the gateway closes, the
		// board was forgotten, the session ended): this browser gets the
		// close frame the others got. No writer runs for c yet, so writing
		// here is the only write on the connection.
		frame := appendRound(nil, &round{close: websocket.FormatCloseMessage(code, reason)})
		_ = c.ws.writeWait(frame, time.Now().Add(closeWait))
		_ = c.ws.Close()
		return
	}
	g.sendSnapshot(c)
	go c.readPump() // ends when the connection closes; unregisters c
}

// register adds c and queues its snapshot, under mu so that no event is
// missed or sent twice between the two, and counts c's readPump in connsWG
// (under mu, so Close never waits while one is added). It returns false
// once closed.
func (g *Gateway) register(c *client) (closeCode int, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return websocketGoingAway, "server shutting down"
	}
	// Checked under mu: logout revokes, then closes the session's browsers
	// under mu, so a browser is either closed there or refused here.
	if c.session != "" && g.sessions.isRevoked(c.session) {
		return websocketPolicy, "logged out"
	}
	// Likewise CloseUser: its caller changed the user list first.
	if !g.stillValid(c.id) {
		return websocketPolicy, accessRevoked
	}
	var snap []byte
	n := 0
	if c.device == "" {
		if !g.snapOK {
			g.snap, g.snapN = nil, 0
			for i, ev := range g.fleet.AppendEvents(nil) {
				if i > 0 {
					g.snap = append(g.snap, ',')
				}
				g.snap = ev.AppendJSON(g.snap)
				g.snapN++
			}
			g.snapOK = true
		}
		snap, n = g.snap, g.snapN // shared by every browser: never modified, only replaced
		c.limit = g.cfg.QueueBytes + len(snap)
		g.clients[c] = struct{}{}
	} else {
		evs, known := g.fleet.AppendDeviceEvents(c.device, nil)
		if !known {
			return websocketGoingAway, "device removed" // forgotten since the handshake began
		}
		c.limit = g.cfg.QueueBytes
		for _, ev := range evs {
			if ev.SingleBoard() {
				c.enqueue(ev.AppendSingle(nil), 1)
			}
		}
		subs := g.single[c.device]
		if subs == nil {
			subs = map[*client]struct{}{}
			g.single[c.device] = subs
		}
		subs[c] = struct{}{}
	}
	if n > 0 {
		c.enqueue(snap, n)
	}
	g.m.browsers.Inc()
	g.nBrowser.Add(1)
	g.connsWG.Add(1) // readPump
	return 0, ""
}

// browserCount returns the number of connected browsers.
func (g *Gateway) browserCount() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := len(g.clients)
	for _, subs := range g.single {
		n += len(subs)
	}
	return n
}

// unregister removes c; it is called once, by c's readPump.
func (g *Gateway) unregister(c *client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.device == "" {
		delete(g.clients, c)
	} else if subs := g.single[c.device]; subs != nil {
		delete(subs, c)
		if len(subs) == 0 {
			delete(g.single, c.device)
		}
	}
	g.m.browsers.Dec()
	g.nBrowser.Add(-1)
}

// eachBrowser calls fn for every browser, /ws and /ws/<id>. Caller holds
// mu (read or write).
func (g *Gateway) eachBrowser(fn func(*client)) {
	for c := range g.clients {
		fn(c)
	}
	for _, subs := range g.single {
		for c := range subs {
			fn(c)
		}
	}
}

// closeSession closes every browser that came with session sid (1008,
// "logged out").
func (g *Gateway) closeSession(sid string) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	g.eachBrowser(func(c *client) {
		if c.session == sid {
			c.close(websocketPolicy, "logged out")
		}
	})
}

// accessRevoked is the close reason of a browser whose user was disabled,
// removed or changed (CloseUser).
const accessRevoked = "access revoked"

// CloseUser closes every browser (/ws and /ws/<id>) that logged in as the
// user name (1008, "access revoked"), however it authenticated: session,
// token or HTTP Basic. The caller has changed the user list first
// (auth.Authority.SetAccounts): a disabled or removed user's session
// cookie is refused from then on (its User is false), and a handshake
// under way while CloseUser runs is refused when it registers.
func (g *Gateway) CloseUser(name string) {
	if name == "" {
		return
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	g.eachBrowser(func(c *client) {
		if !c.id.Anonymous && c.id.Name == name {
			c.close(websocketPolicy, accessRevoked)
		}
	})
}

// stillValid reports whether the user id logged in as is still there with
// the same role (anonymous identities always are). Caller holds mu.
func (g *Gateway) stillValid(id auth.Identity) bool {
	if g.cfg.Auth == nil || id.Anonymous || id.Name == "" {
		return true
	}
	cur, ok := g.cfg.Auth.User(id.Name)
	return ok && cur.Role == id.Role
}

// pinger pings every browser each PingInterval, from one ticker for all
// (an idle browser has no goroutine of its own to do it).
func (g *Gateway) pinger() {
	defer g.loopWG.Done()
	t := time.NewTicker(g.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-g.stop:
			return
		}
		g.mu.RLock()
		g.eachBrowser((*client).ping)
		g.mu.RUnlock()
	}
}

// sharedPoller reads again, every SharedPoll, what other control planes
// sharing the stores changed: the logouts (closing the browsers of the
// sessions they ended) and the names and tags. Each failure is logged
// once, not every SharedPoll, until that read works again.
func (g *Gateway) sharedPoller() {
	defer g.loopWG.Done()
	t := time.NewTicker(g.cfg.SharedPoll)
	defer t.Stop()
	var logouts, meta sharedRead
	for {
		select {
		case <-t.C:
		case <-g.stop:
			return
		}
		if g.cfg.RevokedSessions != nil {
			logouts.done(g.log, "logouts of other control planes", g.reloadRevoked())
		}
		if g.cfg.Meta != nil {
			ctx, cancel := context.WithTimeout(context.Background(), g.cfg.SharedPoll)
			meta.done(g.log, "names and tags set by other control planes", g.reloadMeta(ctx))
			cancel()
		}
	}
}

// sharedRead is whether one of sharedPoller's reads is failing.
type sharedRead struct{ failing bool }

// done logs err when the read starts failing, and when it works again.
func (r *sharedRead) done(log *slog.Logger, what string, err error) {
	switch {
	case err != nil && !r.failing:
		log.Error(what+" not read; trying again", "err", err)
	case err == nil && r.failing:
		log.Info(what + " read again")
	}
	r.failing = err != nil
}

// reloadRevoked reads the revoked sessions again and closes the browsers
// of those another control plane logged out. As in logout, the session
// is revoked before its browsers are closed under mu, so a browser
// registering meanwhile is refused (register).
func (g *Gateway) reloadRevoked() error {
	added, err := g.sessions.reload(time.Now())
	if err != nil {
		return err
	}
	for _, sid := range added {
		g.closeSession(sid)
	}
	return nil
}
