// Package accounts onboards boards and manages users and their API tokens
// at run time: the HTTP API of the contract's "Onboarding" section
// (POST /api/boards, /api/users…), served behind the gateway's access
// rules.
//
// Everything lives in the database (Store). After every change the
// service reloads the whole list into the user list's database layer
// (Authority.SetAccounts), so a change takes effect at once, and
// disconnects the users whose access it revoked (Kicker: their MQTT
// clients and their browsers), so that a deleted or disabled user is gone
// within a second, not at its next login. Users from config.yaml are
// listed but read-only.
//
// A board created here (POST /api/boards) is a device user named by its
// id, with a generated secret stored only as its SHA-256 digest, and a
// row in the store's boards; the gateway knows it at once, offline
// (Fleet.Declare). A board that connects without being declared in
// config, created or adopted here, or being a device user's, is "new"
// (Adopted answers false) until an admin adopts it (POST /api/boards with
// its id) or forgets it. Forgetting a board created here deletes its
// device user too (Forgetting, run by the gateway's DELETE
// /api/devices/<id>).
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/auth"
	"switchyard/history"
	"switchyard/store"
)

// Store keeps the accounts and onboarded boards (package store's DB).
type Store interface {
	Accounts(ctx context.Context) ([]store.Account, error)
	CreateAccount(ctx context.Context, a store.Account) error
	UpdateAccount(ctx context.Context, a store.Account) error
	DeleteAccount(ctx context.Context, name string) error
	AddToken(ctx context.Context, name string, t store.Token) error
	DeleteToken(ctx context.Context, name, id string) error
	Boards(ctx context.Context) ([]store.Board, error)
	CreateBoard(ctx context.Context, b store.Board, user *store.Account) error
	DeleteBoard(ctx context.Context, id string) (userDeleted bool, err error)
}

// Authority is the user list (package auth's Authority): config users,
// read-only, and the database layer this service sets.
type Authority interface {
	// SetAccounts replaces the database layer and returns the names whose
	// access it revoked.
	SetAccounts(accts []auth.Account) (revoked []string)
	FromConfig(name string) bool
	Taken(name string) bool
	Users() []auth.UserView
	EnabledAdmins() int
}

// Kicker disconnects a user's clients at once: its MQTT clients
// (DisconnectUser, the embedded broker's) and its browsers (CloseUser,
// the gateway's).
type Kicker interface {
	DisconnectUser(name string) int
	CloseUser(name string)
}

// Auditor keeps the audit log; Audit must not block.
type Auditor interface {
	Audit(e history.Entry)
}

// Fleet is the gateway's view of the boards.
type Fleet interface {
	// Declare makes a board known (offline until it connects), setting
	// its name and tags when name is not "" or tags not nil.
	Declare(id, name string, tags []string) error
	// Online reports whether a known board is online.
	Online(id string) bool
}

// Config configures a Service. Store and Auth are required; the zero
// value of every other field is a documented default.
type Config struct {
	Store Store
	Auth  Authority
	// Kicker disconnects the users whose access a change revoked; nil
	// disconnects nobody (their next login is refused all the same).
	Kicker Kicker
	// Audit, when set, hears every change, ok, denied or failed.
	Audit Auditor
	// ConfigDevices are the board ids of config.yaml's device users, each
	// to its user's name: never new, and taken.
	ConfigDevices map[string]string
	// Broker is how POST /api/boards names the MQTT broker to boards
	// (see BrokerConfig).
	Broker BrokerConfig
	// UpdateKey is the control plane's update public key in base64, as
	// devicefw --update-key takes it; "" leaves it out of the command.
	UpdateKey string
	// Prefix is the topic prefix; "" means devices (and is left out of
	// the command, devicefw's default).
	Prefix string
	// Refresh is how often the service reloads the store by itself, so
	// that what another control plane sharing the database (PostgreSQL)
	// changed takes effect here too: its users, tokens and boards, its
	// revoked users disconnected. 0 means never: on a database of its
	// own, every change is this service's.
	Refresh time.Duration
	// PasswordCost is the bcrypt cost of the passwords set here; 0 means
	// bcrypt.DefaultCost, as `controlplane hash-password` uses.
	PasswordCost int
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
}

// loadTimeout bounds loading the accounts from the store at start.
const loadTimeout = 30 * time.Second

// Service is the onboarding and user API. Create it with New, then
// Attach the gateway.
type Service struct {
	cfg Config
	log *slog.Logger

	// mu is held across every change, from reading the store to
	// kicking the revoked users, so that changes apply in order and the
	// checks (the last admin) see what the previous change left.
	mu    sync.Mutex
	fleet Fleet // set by Attach; nil before

	boards map[string]bool // the onboarded boards as of the last reload; s.mu's

	stop      chan struct{} // closed by Close: ends the refresher
	done      chan struct{} // closed when the refresher has ended
	closeOnce sync.Once

	knownMu sync.RWMutex      // guards known and owner, each replaced whole by reload
	known   map[string]bool   // board ids that are not new: onboarded, a device user's, config's
	owner   map[string]string // board id → the device user that has it among its ids
}

// New loads the accounts from cfg.Store into cfg.Auth (call it before
// the broker accepts clients, so that boards created here can log in)
// and returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Auth == nil {
		return nil, errors.New("accounts: Store and Auth are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	s := &Service{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	s.mu.Lock()
	_, err := s.reload(ctx)
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if cfg.Refresh > 0 {
		go s.refresher() // ends when Close closes s.stop
	} else {
		close(s.done)
	}
	return s, nil
}

// Close stops reloading the store (Config.Refresh); calling it again
// does nothing.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
}

// refresher reloads the store every Config.Refresh, applying what other
// control planes changed, and declares the boards they created.
func (s *Service) refresher() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Refresh)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.stop:
			return
		}
		s.mu.Lock()
		before := s.boards
		if err := s.apply(context.Background()); err == nil && s.fleet != nil {
			for id := range s.boards {
				if !before[id] {
					if err := s.fleet.Declare(id, "", nil); err != nil {
						s.log.Warn("an onboarded board is not shown", "device", id, "err", err)
					}
				}
			}
		}
		s.mu.Unlock()
	}
}

// Attach hands the service the gateway's fleet and declares there every
// board onboarded here, so that one that has not connected since the
// last start shows, offline.
func (s *Service) Attach(fleet Fleet) error {
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fleet = fleet
	boards, err := s.cfg.Store.Boards(ctx)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	for _, b := range boards {
		if err := fleet.Declare(b.ID, "", nil); err != nil {
			s.log.Warn("an onboarded board is not shown", "device", b.ID, "err", err)
		}
	}
	return nil
}

// Adopted reports whether board id is one people know of: onboarded here
// (created or adopted), one of a device user's ids, or a config device
// user's. A board the gateway knows and this answers false for is "new".
// It is safe for concurrent use and does not block.
func (s *Service) Adopted(id string) bool {
	s.knownMu.RLock()
	defer s.knownMu.RUnlock()
	return s.known[id]
}

// reload loads every account and board from the store, hands the
// accounts to the user list and rebuilds the known boards; it returns
// the names whose access the new list revoked. The caller holds s.mu.
func (s *Service) reload(ctx context.Context) (revoked []string, err error) {
	stored, err := s.cfg.Store.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	boards, err := s.cfg.Store.Boards(ctx)
	if err != nil {
		return nil, err
	}
	known, owner, onboarded := map[string]bool{}, map[string]string{}, map[string]bool{}
	for id, name := range s.cfg.ConfigDevices {
		known[id], owner[id] = true, name
	}
	for _, b := range boards {
		known[b.ID], onboarded[b.ID] = true, true
	}
	accts := make([]auth.Account, 0, len(stored))
	for _, a := range stored {
		acct, err := toAuth(a)
		if err != nil {
			// Edited by hand, say: logged and left out (it logs in
			// nowhere) rather than stopping the control plane.
			s.log.Warn("a stored user is ignored", "user", a.Name, "err", err)
			continue
		}
		if acct.Role == auth.RoleDevice && !s.cfg.Auth.FromConfig(acct.Name) {
			for _, id := range acct.IDs {
				known[id] = true
				if owner[id] == "" {
					owner[id] = acct.Name
				}
			}
		}
		accts = append(accts, acct)
	}
	revoked = s.cfg.Auth.SetAccounts(accts)
	s.boards = onboarded
	s.knownMu.Lock()
	s.known, s.owner = known, owner
	s.knownMu.Unlock()
	return revoked, nil
}

// toAuth converts a stored account for the user list.
func toAuth(a store.Account) (auth.Account, error) {
	role, err := auth.ParseRole(a.Role)
	if err != nil {
		return auth.Account{}, err
	}
	acct := auth.Account{Name: a.Name, Role: role, IDs: a.IDs, PasswordHash: a.PasswordHash,
		SecretDigest: a.SecretDigest, Disabled: a.Disabled}
	if role == auth.RoleDevice && len(acct.IDs) == 0 {
		acct.IDs = []string{a.Name}
	}
	for _, t := range a.Tokens {
		acct.Tokens = append(acct.Tokens, auth.TokenRecord{ID: t.ID, Digest: t.Digest, Created: t.Created})
	}
	if err := acct.Check(); err != nil {
		return auth.Account{}, err
	}
	return acct, nil
}

// apply reloads the user list after a change and disconnects the users
// it revoked, and those in also (whose rights changed: a role). It runs
// to the end even when the request that made the change has gone: the
// change is in the store. An error means the change is saved but not in
// effect (until the next one, or a restart). The caller holds s.mu.
func (s *Service) apply(ctx context.Context, also ...string) error {
	_, err := s.applyKicked(ctx, also...)
	return err
}

// applyKicked is apply, also returning how many MQTT clients of each
// revoked user it disconnected.
func (s *Service) applyKicked(ctx context.Context, also ...string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
	defer cancel()
	revoked, err := s.reload(ctx)
	if err != nil {
		s.log.Error("the user list was not reloaded after a change", "err", err)
		return nil, err
	}
	for _, name := range also {
		if !slices.Contains(revoked, name) {
			revoked = append(revoked, name)
		}
	}
	return s.kick(revoked), nil
}

// kick disconnects every client of the named users and returns how many
// MQTT clients of each it disconnected.
func (s *Service) kick(names []string) map[string]int {
	k := s.cfg.Kicker
	if k == nil {
		return nil
	}
	out := make(map[string]int, len(names))
	for _, name := range names {
		n := k.DisconnectUser(name)
		k.CloseUser(name)
		out[name] = n
		level := slog.LevelDebug // a disabled user is revoked again at every change
		if n > 0 {
			level = slog.LevelInfo
		}
		s.log.Log(context.Background(), level, "user's clients disconnected", "user", name, "mqtt_clients", n)
	}
	return out
}

// Forgetting runs when the gateway is about to forget board id (DELETE
// /api/devices/<id>): a board onboarded here is no longer, and its device
// user is deleted and disconnected, so that it cannot come back. A board
// not onboarded here is left to the gateway.
//
// A disconnected board's Last Will (its retained status "offline") is
// published by the broker after the connection has closed, a moment after
// the kick: Forgetting waits (up to willWait) for the gateway to see the
// board offline, so that the Will lands before the gateway clears the
// board's retained topics, not after, where it would make the board known
// again.
func (s *Service) Forgetting(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	userDeleted, err := s.cfg.Store.DeleteBoard(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !userDeleted {
		return s.apply(ctx)
	}
	who, _ := auth.FromContext(ctx)
	s.audit(who.Actor(), history.ActionUserDelete, id, history.ResultOK, "")
	kicked, err := s.applyKicked(ctx, id)
	if err != nil {
		return err
	}
	if kicked[id] > 0 && s.fleet != nil {
		s.waitOffline(ctx, id)
	}
	return nil
}

// willWait bounds how long Forgetting waits for a kicked board's Will.
const willWait = 2 * time.Second

// waitOffline polls (the gateway has no event for it) until board id is
// offline, for up to willWait; a board without a Will stays online, and
// is then forgotten all the same.
func (s *Service) waitOffline(ctx context.Context, id string) {
	deadline := time.NewTimer(willWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.fleet.Online(id) {
		select {
		case <-tick.C:
		case <-deadline.C:
			s.log.Warn("a deleted board still shows online: forgotten all the same", "device", id)
			return
		case <-ctx.Done():
			return
		}
	}
}

// audit records an entry when there is an audit log.
func (s *Service) audit(actor string, a history.Action, target string, res history.Result, remote string) {
	if s.cfg.Audit != nil {
		s.cfg.Audit.Audit(history.Entry{At: time.Now(), Actor: actor, Action: a, Target: target, Result: res, Remote: remote})
	}
}
