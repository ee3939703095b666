package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The users created at run time (users, with their API tokens in
// user_tokens) and the boards onboarded at run time (boards). The
// config file's users are not stored: they are read-only and live in
// config.yaml.

// Account is a user created at run time. The store checks none of its
// fields beyond the name being free: that is the caller's.
type Account struct {
	Name         string
	Role         string   // "device", "viewer", "operator" or "admin"
	IDs          []string // device role: the board ids it may be; stored [] when nil
	PasswordHash string   // bcrypt, for people; "" for none
	SecretDigest string   // SHA-256 hex of a board's generated secret; "" for none
	Disabled     bool
	Created      time.Time
	Tokens       []Token // oldest first; CreateAccount stores them too, UpdateAccount leaves them
}

// Token is one API token of an account.
type Token struct {
	ID      string // short public id
	Digest  string // SHA-256 hex of the token; unique over every account
	Created time.Time
}

// Board is a board onboarded at run time. Its device user, when it has
// one, is the account named by its id.
type Board struct {
	ID        string
	Created   time.Time
	CreatedBy string // the user who created or adopted it
}

// Accounts returns every account with its tokens, sorted by name.
func (s *DB) Accounts(ctx context.Context) ([]Account, error) {
	// One statement, so one snapshot: an account and its tokens as one
	// commit left them, on PostgreSQL too.
	rows, err := s.db.QueryContext(ctx, `SELECT u.name, u.role, u.ids, u.password_hash, u.secret_digest, u.disabled, u.created,
			t.id, t.digest, t.created
		FROM users u LEFT JOIN user_tokens t ON t.user_name = u.name
		ORDER BY u.name, t.created, t.id`)
	if err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	defer rows.Close()
	var list []Account
	for rows.Next() {
		var a Account
		var ids string
		var disabled, created int64
		var tid, tdigest sql.NullString
		var tcreated sql.NullInt64
		if err := rows.Scan(&a.Name, &a.Role, &ids, &a.PasswordHash, &a.SecretDigest, &disabled, &created,
			&tid, &tdigest, &tcreated); err != nil {
			return nil, fmt.Errorf("load accounts: %w", err)
		}
		if n := len(list); n == 0 || list[n-1].Name != a.Name {
			if err := json.Unmarshal([]byte(ids), &a.IDs); err != nil {
				return nil, fmt.Errorf("load account %s: ids %q: %w", a.Name, ids, err)
			}
			a.Disabled, a.Created = disabled != 0, fromNanos(created)
			list = append(list, a)
		}
		if tid.Valid {
			last := &list[len(list)-1]
			last.Tokens = append(last.Tokens, Token{ID: tid.String, Digest: tdigest.String, Created: fromNanos(tcreated.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	return list, nil
}

// CreateAccount stores a new account and its tokens; ErrExists when the
// name is taken (or one of its tokens' ids or digests is).
func (s *DB) CreateAccount(ctx context.Context, a Account) error {
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.createAccount(ctx, tx, a) }); err != nil {
		return fmt.Errorf("create account %s: %w", a.Name, err)
	}
	return nil
}

func (s *DB) createAccount(ctx context.Context, tx *sql.Tx, a Account) error {
	ids, err := idsJSON(a.IDs)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO users (name, role, ids, password_hash, secret_digest, disabled, created)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`),
		a.Name, a.Role, ids, a.PasswordHash, a.SecretDigest, boolInt(a.Disabled), nanos(a.Created))
	if err := oneRow(res, err, ErrExists); err != nil {
		return err
	}
	for _, t := range a.Tokens {
		if err := s.insertToken(ctx, tx, a.Name, t); err != nil {
			return err
		}
	}
	return nil
}

// UpdateAccount replaces an account's role, ids, password hash, secret
// digest and disabled flag (its name, creation time and tokens stay);
// ErrNotFound when there is no such account.
func (s *DB) UpdateAccount(ctx context.Context, a Account) error {
	ids, err := idsJSON(a.IDs)
	if err == nil {
		var res sql.Result
		res, err = s.db.ExecContext(ctx, s.d.q(`UPDATE users SET role = ?, ids = ?, password_hash = ?, secret_digest = ?, disabled = ?
			WHERE name = ?`), a.Role, ids, a.PasswordHash, a.SecretDigest, boolInt(a.Disabled), a.Name)
		err = oneRow(res, err, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update account %s: %w", a.Name, err)
	}
	return nil
}

// DeleteAccount deletes an account and its tokens; ErrNotFound when there
// is no such account.
func (s *DB) DeleteAccount(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM users WHERE name = ?`), name)
	if err := oneRow(res, err, ErrNotFound); err != nil {
		return fmt.Errorf("delete account %s: %w", name, err)
	}
	return nil
}

// AddToken adds an API token to account name: ErrNotFound when there is
// no such account, ErrExists when the token's id or digest is taken.
func (s *DB) AddToken(ctx context.Context, name string, t Token) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, s.d.q(`SELECT 1 FROM users WHERE name = ?`), name).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return s.insertToken(ctx, tx, name, t)
	})
	if err != nil {
		return fmt.Errorf("add token %s to %s: %w", t.ID, name, err)
	}
	return nil
}

func (s *DB) insertToken(ctx context.Context, tx *sql.Tx, name string, t Token) error {
	// No conflict target: a taken id and a taken digest are both ErrExists.
	res, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO user_tokens (id, user_name, digest, created)
		VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`), t.ID, name, t.Digest, nanos(t.Created))
	return oneRow(res, err, ErrExists)
}

// DeleteToken deletes account name's token id; ErrNotFound when that
// account has no such token.
func (s *DB) DeleteToken(ctx context.Context, name, id string) error {
	res, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM user_tokens WHERE id = ? AND user_name = ?`), id, name)
	if err := oneRow(res, err, ErrNotFound); err != nil {
		return fmt.Errorf("delete token %s of %s: %w", id, name, err)
	}
	return nil
}

// Boards returns every onboarded board, sorted by id.
func (s *DB) Boards(ctx context.Context) ([]Board, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, created, created_by FROM boards ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load boards: %w", err)
	}
	defer rows.Close()
	var list []Board
	for rows.Next() {
		var b Board
		var created int64
		if err := rows.Scan(&b.ID, &created, &b.CreatedBy); err != nil {
			return nil, fmt.Errorf("load boards: %w", err)
		}
		b.Created = fromNanos(created)
		list = append(list, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load boards: %w", err)
	}
	return list, nil
}

// CreateBoard stores an onboarded board and, when user is not nil, its
// device user, in one transaction: ErrExists (and nothing stored) when
// the board or the user exists already.
func (s *DB) CreateBoard(ctx context.Context, b Board, user *Account) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO boards (id, created, created_by) VALUES (?, ?, ?)
			ON CONFLICT (id) DO NOTHING`), b.ID, nanos(b.Created), b.CreatedBy)
		if err := oneRow(res, err, ErrExists); err != nil {
			return err
		}
		if user != nil {
			return s.createAccount(ctx, tx, *user)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create board %s: %w", b.ID, err)
	}
	return nil
}

// DeleteBoard forgets an onboarded board and deletes its device user (the
// account of role device named by its id), in one transaction;
// userDeleted says whether there was one. ErrNotFound when no such board
// was onboarded (then nothing is deleted).
func (s *DB) DeleteBoard(ctx context.Context, id string) (userDeleted bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM boards WHERE id = ?`), id)
		if err := oneRow(res, err, ErrNotFound); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, s.d.q(`DELETE FROM users WHERE name = ? AND role = 'device'`), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		userDeleted = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete board %s: %w", id, err)
	}
	return userDeleted, nil
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit it does nothing
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// idsJSON is a list of board ids as stored: a JSON array, [] for none.
func idsJSON(ids []string) (string, error) {
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(ids)
	return string(b), err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
