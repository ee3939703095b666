package auth

import (
	"fmt"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkLogin: what one login costs the control plane, by kind (bcrypt
// at the cost `controlplane hash-password` uses).
//
//	go test -run '^$' -bench Login -benchmem ./auth
func BenchmarkLogin(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("people-pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{Users: []User{{Name: "ada", PasswordHash: string(h), Role: RoleAdmin}}})
	if err != nil {
		b.Fatal(err)
	}
	a.SetAccounts([]Account{{Name: "board-1", Role: RoleDevice, SecretDigest: digest("board-secret")}})
	for _, tc := range []struct {
		name, user, pw, remote string
		ok                     bool
	}{
		{"board-secret", "board-1", "board-secret", "192.0.2.1", true},
		{"remembered-password", "ada", "people-pw", "192.0.2.2", true},
		{"throttled", "ada", "wrong", "192.0.2.3", false},
		{"bcrypt-password", "ada", "people-pw", "192.0.2.4", true},
	} {
		if tc.name == "throttled" {
			for range maxFailures {
				_, _ = a.Login(tc.user, tc.pw, tc.remote)
			}
		}
		_, _ = a.Login(tc.user, tc.pw, tc.remote) // remembered from here on
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if tc.name == "bcrypt-password" {
					a.creds.forget([]string{tc.user})
				}
				_, err := a.Login(tc.user, tc.pw, fmt.Sprintf("%s:%d", tc.remote, i%60000))
				if (err == nil) != tc.ok {
					b.Fatalf("Login(%s) = %v", tc.user, err)
				}
			}
		})
	}
}
