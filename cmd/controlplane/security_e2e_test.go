package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "switchyard test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestHashPasswordAndNewToken(t *testing.T) {
	cmd := exec.Command(binary(t), "hash-password")
	cmd.Stdin = strings.NewReader("s3cret\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(string(out))
	if strings.Count(string(out), "\n") != 1 || bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")) != nil {
		t.Errorf("hash-password printed %q: not one bcrypt hash of the password", out)
	}
	cmd = exec.Command(binary(t), "hash-password")
	cmd.Stdin = strings.NewReader("")
	if err := cmd.Run(); err == nil {
		t.Error("hash-password accepted an empty password")
	}
	out, err = exec.Command(binary(t), "new-token").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 {
		t.Fatalf("new-token printed %q, want two lines", out)
	}
	sum := sha256.Sum256([]byte(lines[0]))
	if hex.EncodeToString(sum[:]) != lines[1] || len(lines[0]) < 32 {
		t.Errorf("new-token: digest %s does not match token %s", lines[1], lines[0])
	}
}

// TestLockedDownOverTLS runs the control plane with anonymous access off,
// HTTPS and MQTT over TLS, and talks to it as a board (mosquitto_pub with a
// device user) and as a script (an API token).
func TestLockedDownOverTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	h, _ := bcrypt.GenerateFromPassword([]byte("pw-board"), bcrypt.MinCost)
	token := "test-token-0123456789abcdef"
	sum := sha256.Sum256([]byte(token))
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
mqtt: {listen: '127.0.0.1:0', tls_listen: '127.0.0.1:0'}
http: {listen: '127.0.0.1:0', tls: true}
tls: {cert_file: %q, key_file: %q}
auth:
  anonymous: "off"
  users:
    - {name: board-1, password_hash: %q, role: device}
    - {name: script, role: operator, tokens: [%q]}
`, certFile, keyFile, h, hex.EncodeToString(sum[:]))), 0o644)
	p := start(t, cfg)
	m := regexp.MustCompile(`mqtt_tls=127\.0\.0\.1:(\d+)`).FindStringSubmatch(p.logs())
	if m == nil {
		t.Fatalf("no mqtt_tls address in the log:\n%s", p.logs())
	}
	tlsPort := m[1]
	https := strings.Replace(p.http, "http://", "https://", 1)
	client := &http.Client{Timeout: wait, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	pub := func(args ...string) (string, error) {
		base := []string{"-h", "127.0.0.1", "-p", tlsPort, "--cafile", certFile, "-q", "1"}
		out, err := exec.Command(mqttTool(t, "mosquitto_pub"), append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := pub("-t", "devices/board-1/status", "-m", "online", "-r"); err == nil {
		t.Errorf("anonymous publish over TLS accepted (%s)", out)
	}
	if out, err := pub("-u", "board-1", "-P", "wrong", "-t", "devices/board-1/status", "-m", "online", "-r"); err == nil {
		t.Errorf("wrong password accepted (%s)", out)
	}
	if out, err := pub("-u", "board-1", "-P", "pw-board", "-i", "board-1", "-t", "devices/board-1/status", "-m", "online", "-r"); err != nil {
		t.Fatalf("board over TLS: %v %s", err, out)
	}
	// The plain listener asks for credentials too.
	if out, err := exec.Command(mqttTool(t, "mosquitto_pub"), "-h", "127.0.0.1", "-p", p.mqttPort, "-t", "devices/x/led", "-m", "ON").CombinedOutput(); err == nil {
		t.Errorf("anonymous publish on plain MQTT accepted (%s)", out)
	}

	get := func(path, tok string) int {
		req, _ := http.NewRequest("GET", https+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/healthz", ""); code != 200 {
		t.Errorf("healthz over HTTPS = %d", code)
	}
	if code := get("/api/devices", ""); code != 401 {
		t.Errorf("API without credentials = %d, want 401", code)
	}
	testutil.WaitFor(t, wait, testutil.Until("board-1 in the API over HTTPS", func() bool {
		return get("/api/devices/board-1", token) == 200
	}))
	p.stop()
}

// TestSessionsAcrossRestarts: with storage, a login survives a restart and
// a logout does too (the cookie stays refused), as the running binary does
// it with its session.key and sessions-revoked.json.
func TestSessionsAcrossRestarts(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw-vera"), bcrypt.MinCost)
	storage := filepath.Join(t.TempDir(), "data", "retained.log")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
mqtt: {listen: '127.0.0.1:0'}
http: {listen: '127.0.0.1:0'}
storage: {path: %q}
auth:
  anonymous: "off"
  users:
    - {name: vera, password_hash: %q, role: viewer}
`, storage, h)), 0o644)

	p := start(t, cfg)
	kept, ended := p.login("vera", "pw-vera"), p.login("vera", "pw-vera")
	p.stop()
	p = start(t, cfg)
	for _, c := range []string{kept, ended} {
		if code := p.form("GET", "/api/devices", "", c).StatusCode; code != http.StatusOK {
			t.Errorf("a session after a restart = %d, want 200", code)
		}
	}
	if code := p.form("POST", "/logout", "", ended).StatusCode; code != http.StatusSeeOther {
		t.Fatalf("logout = %d, want 303", code)
	}
	if code := p.form("GET", "/api/devices", "", ended).StatusCode; code != http.StatusUnauthorized {
		t.Errorf("a logged-out session = %d, want 401", code)
	}
	p.stop()
	p = start(t, cfg)
	if code := p.form("GET", "/api/devices", "", ended).StatusCode; code != http.StatusUnauthorized {
		t.Errorf("a logged-out session after a restart = %d, want 401", code)
	}
	if code := p.form("GET", "/api/devices", "", kept).StatusCode; code != http.StatusOK {
		t.Errorf("the other session after a restart = %d, want 200", code)
	}
	p.stop()
}

// form sends a request with a form body (or none) and a Cookie header (or
// none), without following redirects, and returns the answer, its body
// closed.
func (p *proc) form(method, path, body, cookie string) *http.Response {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.http+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	noRedirect := &http.Client{Timeout: wait, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// login logs name in at /login and returns the session cookie as a Cookie
// header's value.
func (p *proc) login(name, password string) string {
	p.t.Helper()
	resp := p.form("POST", "/login", url.Values{"name": {name}, "password": {password}}.Encode(), "")
	for _, c := range resp.Cookies() {
		if c.Name == "switchyard_session" && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	p.t.Fatalf("login %s = %d, no session cookie", name, resp.StatusCode)
	return ""
}
