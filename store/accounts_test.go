package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func at(sec int64) time.Time { return time.Unix(1700000000+sec, 0).UTC() }

func digest(c byte) string { return strings.Repeat(string(c), 64) }

func checkAccounts(t *testing.T, db *DB, when string, want []Account) {
	t.Helper()
	got, err := db.Accounts(context.Background())
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%s: Accounts =\n %+v, %v\nwant\n %+v", when, got, err, want)
	}
}

func testAccounts(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	checkAccounts(t, db, "empty database", nil)

	alice := Account{Name: "alice", Role: "operator", IDs: []string{}, PasswordHash: "$2a$10$x", Created: at(1),
		Tokens: []Token{{ID: "t2", Digest: digest('b'), Created: at(3)}, {ID: "t1", Digest: digest('a'), Created: at(2)}}}
	board := Account{Name: "board-7", Role: "device", IDs: []string{"board-7", "board-8"}, SecretDigest: digest('c'), Created: at(4)}
	for _, a := range []Account{board, alice} {
		if err := db.CreateAccount(ctx, a); err != nil {
			t.Fatalf("CreateAccount(%s): %v", a.Name, err)
		}
	}
	alice.Tokens[0], alice.Tokens[1] = alice.Tokens[1], alice.Tokens[0] // oldest first
	checkAccounts(t, db, "created", []Account{alice, board})

	refused := []struct {
		what string
		a    Account
	}{
		{"a taken name", Account{Name: "alice", Role: "viewer", Created: at(5)}},
		{"a taken token digest", Account{Name: "bob", Role: "viewer", Created: at(5), Tokens: []Token{{ID: "t9", Digest: digest('a')}}}},
		{"a taken token id", Account{Name: "bob", Role: "viewer", Created: at(5), Tokens: []Token{{ID: "t1", Digest: digest('z')}}}},
	}
	for _, r := range refused {
		if err := db.CreateAccount(ctx, r.a); !errors.Is(err, ErrExists) {
			t.Errorf("CreateAccount with %s: got %v, want ErrExists", r.what, err)
		}
	}
	checkAccounts(t, db, "after the refused creations (nothing half stored)", []Account{alice, board})

	// Update: role, hash, disabled; name, created and tokens stay.
	upd := alice
	upd.Role, upd.PasswordHash, upd.Disabled = "admin", "$2a$10$y", true
	upd.Created, upd.Tokens = at(99), nil // ignored
	if err := db.UpdateAccount(ctx, upd); err != nil {
		t.Fatal(err)
	}
	alice.Role, alice.PasswordHash, alice.Disabled = "admin", "$2a$10$y", true
	if err := db.UpdateAccount(ctx, Account{Name: "nobody", Role: "viewer"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateAccount(nobody): got %v, want ErrNotFound", err)
	}

	// Tokens.
	if err := db.AddToken(ctx, "board-7", Token{ID: "t3", Digest: digest('d'), Created: at(6)}); err != nil {
		t.Fatal(err)
	}
	board.Tokens = []Token{{ID: "t3", Digest: digest('d'), Created: at(6)}}
	for _, c := range []struct {
		name string
		tok  Token
		want error
	}{
		{"nobody", Token{ID: "t4", Digest: digest('e')}, ErrNotFound},
		{"board-7", Token{ID: "t4", Digest: digest('a')}, ErrExists}, // alice's digest
		{"board-7", Token{ID: "t1", Digest: digest('e')}, ErrExists}, // alice's id
	} {
		if err := db.AddToken(ctx, c.name, c.tok); !errors.Is(err, c.want) {
			t.Errorf("AddToken(%s, %+v): got %v, want %v", c.name, c.tok, err, c.want)
		}
	}
	if err := db.DeleteToken(ctx, "board-7", "t1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteToken of another account's token: got %v, want ErrNotFound", err)
	}
	if err := db.DeleteToken(ctx, "alice", "t2"); err != nil {
		t.Fatal(err)
	}
	alice.Tokens = alice.Tokens[:1]
	checkAccounts(t, db, "updated", []Account{alice, board})
	db.Close()

	db = open(t, url)
	checkAccounts(t, db, "after reopen", []Account{alice, board})

	// Deleting an account deletes its tokens: their digests are free again.
	if err := db.DeleteAccount(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAccount(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteAccount: got %v, want ErrNotFound", err)
	}
	if err := db.AddToken(ctx, "board-7", Token{ID: "t1", Digest: digest('a'), Created: at(7)}); err != nil {
		t.Errorf("a deleted account's token id and digest: %v", err)
	}
	board.Tokens = append(board.Tokens, Token{ID: "t1", Digest: digest('a'), Created: at(7)})
	checkAccounts(t, db, "after delete", []Account{board})
}

func testBoards(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	if got, err := db.Boards(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty database: %v, %v", got, err)
	}
	user := func(id string) *Account {
		return &Account{Name: id, Role: "device", IDs: []string{id}, SecretDigest: digest('s'), Created: at(1)}
	}
	if err := db.CreateAccount(ctx, Account{Name: "taken", Role: "viewer", IDs: []string{}, Created: at(0)}); err != nil {
		t.Fatal(err)
	}
	created := []Board{
		{ID: "b2", Created: at(2), CreatedBy: "admin"},
		{ID: "b1", Created: at(1), CreatedBy: "root"},
	}
	if err := db.CreateBoard(ctx, created[0], user("b2")); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateBoard(ctx, created[1], nil); err != nil { // adopted without credentials
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		b    Board
		u    *Account
	}{
		{"a taken board id", Board{ID: "b1", Created: at(3)}, nil},
		{"a taken board id, with a user", Board{ID: "b1", Created: at(3)}, user("b1")},
		{"a taken user name", Board{ID: "taken", Created: at(3)}, user("taken")},
	} {
		if err := db.CreateBoard(ctx, c.b, c.u); !errors.Is(err, ErrExists) {
			t.Errorf("CreateBoard with %s: got %v, want ErrExists", c.what, err)
		}
	}
	want := []Board{created[1], created[0]}
	if got, err := db.Boards(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Boards = %+v, %v; want %+v (the refused ones left nothing)", got, err, want)
	}
	taken := Account{Name: "taken", Role: "viewer", IDs: []string{}, Created: at(0)}
	checkAccounts(t, db, "boards created", []Account{*user("b2"), taken})

	if del, err := db.DeleteBoard(ctx, "b2"); err != nil || !del {
		t.Errorf("DeleteBoard(b2) = %v, %v; want its user deleted", del, err)
	}
	if del, err := db.DeleteBoard(ctx, "b1"); err != nil || del {
		t.Errorf("DeleteBoard(b1) = %v, %v; want no user deleted", del, err)
	}
	if _, err := db.DeleteBoard(ctx, "taken"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteBoard of a user that is no board: got %v, want ErrNotFound", err)
	}
	if got, err := db.Boards(ctx); err != nil || len(got) != 0 {
		t.Errorf("Boards after delete = %+v, %v; want none", got, err)
	}
	checkAccounts(t, db, "boards deleted", []Account{taken})
}

// A database of issue 13 gets the tables at its next Open and keeps its
// rows.
func testAccountsMigrated(t *testing.T, url string) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:3]
	db := open(t, url)
	migrations = saved
	if err := db.AddFirmware(ctx, firmwareN(1)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = open(t, url)
	if got := schemaVersion(t, db); got != len(migrations) {
		t.Errorf("schema version %d, want %d", got, len(migrations))
	}
	a := Account{Name: "a", Role: "admin", IDs: []string{}, Created: at(1)}
	if err := db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	checkAccounts(t, db, "migrated", []Account{a})
	if _, err := db.Firmware(ctx, firmwareN(1).SHA256); err != nil {
		t.Errorf("firmware after the migration: %v", err)
	}
}
