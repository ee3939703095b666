// Boards: POST /api/boards creates (or adopts) a board with its device
// user, and hands out the command and environment file that connect it.

package accounts

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/history"
	"switchyard/store"
)

// BrokerConfig says how boards reach the MQTT broker, for the command
// POST /api/boards hands out.
type BrokerConfig struct {
	// URL, when set, is the broker's URL as boards reach it, whole (an
	// external broker's mqtt.url); the fields below are then unused.
	URL string
	// PublicURL is http.public_url: its host names the broker. When
	// empty, the host of the admin's request does (the Host it reached
	// the control plane at).
	PublicURL string
	// TCPPort is the port of the MQTT listener boards reach (tcp://); 0
	// when there is none.
	TCPPort int
	// TLSPort is the port of the MQTT TLS listener (ssl://), used when
	// TCPPort is 0; 0 when there is none.
	TLSPort int
}

// brokerURL is the broker's URL as a board reaches it, for a request r of
// the admin's.
func (b BrokerConfig) brokerURL(r *http.Request) (string, error) {
	if b.URL != "" {
		return b.URL, nil
	}
	scheme, port := "tcp", b.TCPPort
	if port == 0 {
		scheme, port = "ssl", b.TLSPort
	}
	if port == 0 {
		return "", errors.New("no MQTT listener that boards can reach")
	}
	host := ""
	if b.PublicURL != "" {
		u, err := url.Parse(b.PublicURL)
		if err != nil {
			return "", fmt.Errorf("http.public_url: %w", err)
		}
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	} else {
		host = strings.Trim(r.Host, "[]") // no port
	}
	if host == "" {
		return "", errors.New("no host to name the broker by: set http.public_url")
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

type createBoardBody struct {
	ID   string    `json:"id"`
	Name string    `json:"name"`
	Tags *[]string `json:"tags"`
}

// boardCreated is the answer to POST /api/boards; the password is shown
// this once.
type boardCreated struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	Broker    string `json:"broker"`
	UpdateKey string `json:"update_key"`
	Command   string `json:"command"`
	Env       string `json:"env"`
}

// createBoard is POST /api/boards: a device user for the id with a
// generated secret, the board known at once, and the devicefw command and
// environment file that connect it. 409 when the id is taken by a user
// (or a user's board ids) or an onboarded board; 400 for a bad id, name
// or tags.
//
// A board that is already connected (anonymously: a "new" one) is
// adopted this way: it gets the same credentials, which it needs once
// anonymous access is turned off; its connection is left alone.
func (s *Service) createBoard(w http.ResponseWriter, r *http.Request) {
	c := s.newCall(w, r, history.ActionBoardCreate, "")
	var body createBoardBody
	if !c.decode(&body, `{"id","name","tags"}, name and tags optional`) {
		return
	}
	c.target = body.ID
	if err := devices.ValidateID(body.ID); err != nil {
		c.fail(http.StatusBadRequest, "id: %v", err)
		return
	}
	if err := devices.ValidateName(body.Name); err != nil {
		c.fail(http.StatusBadRequest, "name: %v", err)
		return
	}
	var tags []string
	if body.Tags != nil {
		var err error
		if tags, err = devices.NormalizeTags(*body.Tags); err != nil {
			c.fail(http.StatusBadRequest, "tags: %v", err)
			return
		}
		if tags == nil {
			tags = []string{} // set to none
		}
	}
	broker, err := s.cfg.Broker.brokerURL(r)
	if err != nil {
		c.fail(http.StatusInternalServerError, "%v", err)
		return
	}
	sec, err := newSecret()
	if err != nil {
		c.fail(http.StatusInternalServerError, "%v", err)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fleet == nil {
		c.fail(http.StatusServiceUnavailable, "not ready: no gateway yet")
		return
	}
	if s.cfg.Auth.Taken(body.ID) {
		c.fail(http.StatusConflict, "id %q is taken by a user", body.ID)
		return
	}
	if owner := s.boardOwner(body.ID); owner != "" && owner != body.ID {
		c.fail(http.StatusConflict, "id %q is a board of user %q", body.ID, owner)
		return
	}
	now := time.Now()
	user := store.Account{Name: body.ID, Role: auth.RoleDevice.String(), IDs: []string{body.ID},
		SecretDigest: sec.digest, Created: now}
	err = s.cfg.Store.CreateBoard(r.Context(), store.Board{ID: body.ID, Created: now, CreatedBy: c.who.Actor()}, &user)
	switch {
	case errors.Is(err, store.ErrExists):
		c.fail(http.StatusConflict, "board %q exists", body.ID)
		return
	case err != nil:
		c.fail(http.StatusInternalServerError, "%v", err)
		return
	}
	if !c.applied(s.apply(r.Context())) {
		return
	}
	if err := s.fleet.Declare(body.ID, body.Name, tags); err != nil {
		// The board and its user are made; it shows once it connects.
		s.log.Warn("a created board is not shown until it connects", "device", body.ID, "err", err)
	}
	out := boardCreated{ID: body.ID, Username: body.ID, Password: sec.secret, Broker: broker, UpdateKey: s.cfg.UpdateKey}
	out.Command, out.Env = s.connect(out)
	c.ok(http.StatusCreated, out)
}

// boardOwner returns the device user (config or database) that has board
// id among its ids, or "".
func (s *Service) boardOwner(id string) string {
	s.knownMu.RLock()
	defer s.knownMu.RUnlock()
	return s.owner[id]
}

// connect returns the devicefw command line and environment file that
// connect board b: the same flags, as arguments and as DEVICEFW_*
// variables (devicefw reads every flag from DEVICEFW_<FLAG>). The values
// need no shell quoting: ids, base64 and URLs of hosts use no character
// a shell treats specially.
func (s *Service) connect(b boardCreated) (command, env string) {
	type flag struct{ name, value string }
	flags := []flag{{"broker", b.Broker}, {"id", b.ID}, {"username", b.Username}, {"password", b.Password}}
	if p := s.cfg.Prefix; p != "" && p != devices.DefaultPrefix {
		flags = append(flags, flag{"prefix", p})
	}
	if b.UpdateKey != "" {
		flags = append(flags, flag{"update-key", b.UpdateKey})
	}
	var cmd, envs strings.Builder
	cmd.WriteString("devicefw")
	for _, f := range flags {
		fmt.Fprintf(&cmd, " --%s %s", f.name, f.value)
		fmt.Fprintf(&envs, "DEVICEFW_%s=%s\n", strings.ToUpper(strings.ReplaceAll(f.name, "-", "_")), f.value)
	}
	return cmd.String(), envs.String()
}
