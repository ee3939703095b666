// Users and their API tokens: /api/users….

package accounts

import (
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/history"
	"switchyard/internal/httpapi"
	"switchyard/store"
)

// MinPassword is the fewest characters a password may have.
const MinPassword = 10

// maxPassword is the most bytes bcrypt reads of a password.
const maxPassword = 72

// userJSON is a user in the API: never a secret or a hash.
type userJSON struct {
	Name     string      `json:"name"`
	Role     string      `json:"role"`
	Source   string      `json:"source"` // "config" or "database"
	Disabled bool        `json:"disabled"`
	Tokens   []tokenJSON `json:"tokens"` // [] when none
}

type tokenJSON struct {
	ID      string  `json:"id"`
	Created *string `json:"created"` // RFC 3339; null for a config token
}

func toUserJSON(u auth.UserView) userJSON {
	j := userJSON{Name: u.Name, Role: u.Role.String(), Source: u.Source, Disabled: u.Disabled, Tokens: []tokenJSON{}}
	for _, t := range u.Tokens {
		tj := tokenJSON{ID: t.ID}
		if !t.Created.IsZero() {
			c := t.Created.UTC().Format(time.RFC3339)
			tj.Created = &c
		}
		j.Tokens = append(j.Tokens, tj)
	}
	return j
}

// userView returns the user list's view of user name.
func (s *Service) userView(name string) (userJSON, bool) {
	for _, u := range s.cfg.Auth.Users() {
		if u.Name == name {
			return toUserJSON(u), true
		}
	}
	return userJSON{}, false
}

func (s *Service) listUsers(w http.ResponseWriter, _ *http.Request) {
	users := s.cfg.Auth.Users()
	out := make([]userJSON, len(users))
	for i, u := range users {
		out[i] = toUserJSON(u)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// validateName checks a user name: 1 to 64 of A-Z a-z 0-9 _ - . @; a
// device user's name must also be a board id (its default id).
func validateName(name string, role auth.Role) error {
	if role == auth.RoleDevice {
		if err := devices.ValidateID(name); err != nil {
			return fmt.Errorf("a device user's name is its board id: %w", err)
		}
		return nil
	}
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name %q: want 1 to 64 characters", name)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.', r == '@':
		default:
			return fmt.Errorf("name %q: want only A-Z a-z 0-9 _ - . @", name)
		}
	}
	return nil
}

// checkPassword reports what is wrong with a new password.
func checkPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPassword {
		return fmt.Errorf("password too weak: %d characters, want at least %d", n, MinPassword)
	}
	if len(pw) > maxPassword {
		return fmt.Errorf("password too long: %d bytes, want at most %d", len(pw), maxPassword)
	}
	return nil
}

// hashPassword is pw's bcrypt hash at Config.PasswordCost.
func (s *Service) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.PasswordCost)
	return string(h), err
}

type createUserBody struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// createUser is POST /api/users: 201 with the user; 409 when the name
// is taken; 400 for a bad name or role or a weak password.
func (s *Service) createUser(w http.ResponseWriter, r *http.Request) {
	c := s.newCall(w, r, history.ActionUserCreate, "")
	var body createUserBody
	if !c.decode(&body, `{"name","role","password"}`) {
		return
	}
	c.target = body.Name
	role, err := auth.ParseRole(body.Role)
	if err != nil {
		c.fail(http.StatusBadRequest, "%v", err)
		return
	}
	if err := validateName(body.Name, role); err != nil {
		c.fail(http.StatusBadRequest, "%v", err)
		return
	}
	if err := checkPassword(body.Password); err != nil {
		c.fail(http.StatusBadRequest, "%v", err)
		return
	}
	hash, err := s.hashPassword(body.Password)
	if err != nil {
		c.fail(http.StatusInternalServerError, "%v", err)
		return
	}
	a := store.Account{Name: body.Name, Role: role.String(), PasswordHash: hash, Created: time.Now()}
	if role == auth.RoleDevice {
		a.IDs = []string{body.Name}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Auth.Taken(body.Name) {
		c.fail(http.StatusConflict, "user %q exists", body.Name)
		return
	}
	switch err := s.cfg.Store.CreateAccount(r.Context(), a); {
	case errors.Is(err, store.ErrExists):
		c.fail(http.StatusConflict, "user %q exists", body.Name)
		return
	case err != nil:
		c.fail(http.StatusInternalServerError, "%v", err)
		return
	}
	if !c.applied(s.apply(r.Context())) {
		return
	}
	u, _ := s.userView(body.Name)
	c.ok(http.StatusCreated, u)
}

// account returns the stored account name, answering itself (and false)
// when there is none: 409 for a config user (read-only), else 404. The
// caller holds s.mu.
func (s *Service) account(c *call, name string) (store.Account, bool) {
	if s.cfg.Auth.FromConfig(name) {
		c.fail(http.StatusConflict, "user %q is from config.yaml: it is read-only here", name)
		return store.Account{}, false
	}
	accts, err := s.cfg.Store.Accounts(c.r.Context())
	if err != nil {
		c.fail(http.StatusInternalServerError, "%v", err)
		return store.Account{}, false
	}
	for _, a := range accts {
		if a.Name == name {
			return a, true
		}
	}
	c.fail(http.StatusNotFound, "no user %q", name)
	return store.Account{}, false
}

// enabledAdmin reports whether a is an admin who may log in.
func enabledAdmin(a store.Account) bool { return a.Role == auth.RoleAdmin.String() && !a.Disabled }

// lastAdmin reports whether taking a's admin rights away would leave no
// enabled admin. The caller holds s.mu.
func (s *Service) lastAdmin(a store.Account) bool {
	return enabledAdmin(a) && s.cfg.Auth.EnabledAdmins() <= 1
}

type changeUserBody struct {
	Role     *string `json:"role"`
	Password *string `json:"password"`
	Disabled *bool   `json:"disabled"`
}

// changeUser is PATCH /api/users/<name>: 200 with the user; 409 for a
// config user or for the last enabled admin; 404 unknown; 400 bad role
// or weak password.
func (s *Service) changeUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c := s.newCall(w, r, history.ActionUserChange, name)
	var body changeUserBody
	const want = `{"role","password","disabled"}, each optional`
	if !c.decode(&body, want) {
		return
	}
	if body.Role == nil && body.Password == nil && body.Disabled == nil {
		c.fail(http.StatusBadRequest, "bad body: nothing to change; want %s", want)
		return
	}
	var role auth.Role
	if body.Role != nil {
		var err error
		if role, err = auth.ParseRole(*body.Role); err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
	}
	var hash string
	if body.Password != nil {
		if err := checkPassword(*body.Password); err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
		var err error
		if hash, err = s.hashPassword(*body.Password); err != nil {
			c.fail(http.StatusInternalServerError, "%v", err)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.account(c, name)
	if !ok {
		return
	}
	a := old
	if body.Role != nil {
		if role == auth.RoleDevice && old.Role != role.String() {
			if err := devices.ValidateID(name); err != nil {
				c.fail(http.StatusBadRequest, "role device: a device user's name is its board id: %v", err)
				return
			}
			a.IDs = []string{name}
		} else if role != auth.RoleDevice {
			a.IDs = nil
		}
		a.Role = role.String()
	}
	if body.Password != nil {
		a.PasswordHash, a.SecretDigest = hash, "" // a board's generated secret is replaced too
	}
	if body.Disabled != nil {
		a.Disabled = *body.Disabled
	}
	if !enabledAdmin(a) && s.lastAdmin(old) {
		c.fail(http.StatusConflict, "user %q is the last enabled admin", name)
		return
	}
	if err := s.cfg.Store.UpdateAccount(r.Context(), a); err != nil {
		c.storeFailed(err)
		return
	}
	var also []string
	if a.Role != old.Role {
		also = append(also, name) // clients logged in with the old role's rights
	}
	if !c.applied(s.apply(r.Context(), also...)) {
		return
	}
	u, _ := s.userView(name)
	c.ok(http.StatusOK, u)
}

// deleteUser is DELETE /api/users/<name>: 204; 409 for a config user or
// the last enabled admin; 404 unknown. Deleting the device user of a
// board created here forgets that it was (the board is new again if it
// connects anonymously).
func (s *Service) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c := s.newCall(w, r, history.ActionUserDelete, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.account(c, name)
	if !ok {
		return
	}
	if s.lastAdmin(a) {
		c.fail(http.StatusConflict, "user %q is the last enabled admin", name)
		return
	}
	// A board's device user takes the board with it: no longer
	// onboarded, it can be adopted again.
	userDeleted, err := s.cfg.Store.DeleteBoard(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if err == nil && !userDeleted {
		err = s.cfg.Store.DeleteAccount(r.Context(), name)
	}
	if err != nil {
		c.storeFailed(err)
		return
	}
	if !c.applied(s.apply(r.Context(), name)) {
		return
	}
	c.ok(http.StatusNoContent, nil)
}

// mayManageTokens reports whether the caller may manage user name's
// tokens: an admin anybody's, a user its own.
func mayManageTokens(who auth.Identity, name string) bool {
	return who.Role >= auth.RoleAdmin || (!who.Anonymous && who.Name != "" && who.Name == name)
}

// tokenCreated is the answer to POST /api/users/<name>/tokens: the token
// is shown this once.
type tokenCreated struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// createToken is POST /api/users/<name>/tokens: 201 {"id","token"};
// 403 for another user's tokens unless admin; 409 for a config user; 404
// unknown.
func (s *Service) createToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c := s.newCall(w, r, history.ActionTokenCreate, name)
	if !mayManageTokens(c.who, name) {
		c.fail(http.StatusForbidden, "only an admin may manage another user's tokens")
		return
	}
	tok, err := newToken()
	if err != nil {
		c.fail(http.StatusInternalServerError, "%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.account(c, name); !ok {
		return
	}
	c.target = name + "/" + tok.id
	err = s.cfg.Store.AddToken(r.Context(), name, store.Token{ID: tok.id, Digest: tok.digest, Created: time.Now()})
	if err != nil {
		c.fail(http.StatusInternalServerError, "%v", err)
		return
	}
	if !c.applied(s.apply(r.Context())) {
		return
	}
	c.ok(http.StatusCreated, tokenCreated{ID: tok.id, Token: tok.secret})
}

// deleteToken is DELETE /api/users/<name>/tokens/<id>: 204; 403 for
// another user's tokens unless admin; 409 for a config user; 404 unknown
// user or token.
func (s *Service) deleteToken(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	c := s.newCall(w, r, history.ActionTokenDelete, name+"/"+id)
	if !mayManageTokens(c.who, name) {
		c.fail(http.StatusForbidden, "only an admin may manage another user's tokens")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.account(c, name); !ok {
		return
	}
	if err := s.cfg.Store.DeleteToken(r.Context(), name, id); err != nil {
		c.storeFailed(err)
		return
	}
	if !c.applied(s.apply(r.Context())) {
		return
	}
	c.ok(http.StatusNoContent, nil)
}
