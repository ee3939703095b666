package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaultsAndOverrides(t *testing.T) {
	cfg, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), false, nil)
	if err != nil {
		t.Fatalf("no config file, not explicit: %v", err)
	}
	if cfg.MQTT.Listen != ":1883" || cfg.HTTP.Listen != ":8080" || cfg.Topics.Prefix != "devices" ||
		cfg.Storage.Path != "" || cfg.MQTT.WSListen != "" || cfg.Log.Level != "info" || len(cfg.HTTP.AllowedOrigins) != 0 {
		t.Errorf("defaults: %+v", cfg)
	}

	p := writeConfig(t, `
mqtt: {listen: "127.0.0.1:1884"}
http: {listen: ":9000", allowed_origins: ["http://a.example", "http://b.example"]}
topics: {prefix: home/boards}
storage: {path: data/x.log}
devices:
  - {id: kitchen, name: Kitchen light, tags: [lights, floor-1, lights]}
  - {id: hall}
log: {level: debug}
groups: {kitchen: [kitchen, hall]}
`)
	cfg, err = loadConfig(p, true, []string{
		"CONTROLPLANE_HTTP_LISTEN=:9090",
		"CONTROLPLANE_STORAGE_PATH=", // empty turns storage off
		"CONTROLPLANE_HTTP_ALLOWED_ORIGINS=http://c.example,http://d.example",
		"CONTROLPLANE_MQTT_WS_LISTEN=:9001",
		"CONTROLPLANE_HTTP_LISTN=:1",   // a typo
		"CONTROLPLANE_DEVICES=kitchen", // file only
		"UNRELATED=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantWarn := []string{
		"environment variable CONTROLPLANE_DEVICES is ignored: that key can only be set in the config file",
		"environment variable CONTROLPLANE_HTTP_LISTN is ignored: no such config key",
	}
	if !reflect.DeepEqual(cfg.warnings, wantWarn) {
		t.Errorf("warnings = %q, want %q", cfg.warnings, wantWarn)
	}
	if got, want := cfg.HTTP.Listen, ":9090"; got != want {
		t.Errorf("http.listen = %q, want %q (env)", got, want)
	}
	if cfg.Storage.Path != "" {
		t.Errorf("storage.path = %q, want empty from the empty env value", cfg.Storage.Path)
	}
	if got, want := cfg.HTTP.AllowedOrigins, []string{"http://c.example", "http://d.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("allowed_origins = %q, want %q", got, want)
	}
	if cfg.MQTT.Listen != "127.0.0.1:1884" || cfg.MQTT.WSListen != ":9001" || cfg.Topics.Prefix != "home/boards" || cfg.Log.Level != "debug" {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.Auth.Anonymous != "local" || cfg.HTTP.SessionTTL.Hours() != 168 || cfg.MQTT.MaxPacketSize != 65536 || cfg.Limits.MaxBrowsers != 10000 {
		t.Errorf("security defaults: %+v %+v %+v", cfg.Auth, cfg.HTTP, cfg.Limits)
	}
	if got := cfg.Groups["kitchen"]; len(got) != 2 || cfg.Commands.Timeout.Seconds() != 5 {
		t.Errorf("groups %v, commands.timeout %v", cfg.Groups, cfg.Commands.Timeout)
	}
	if got := cfg.declared(); len(got) != 2 || got[0].ID != "kitchen" || got[0].Name != "Kitchen light" || got[1].ID != "hall" ||
		strings.Join(got[0].Tags, ",") != "floor-1,lights" || len(got[1].Tags) != 0 {
		t.Errorf("devices = %+v (tags sorted, each once)", got)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown key", "mqtt: {listn: ':1'}", nil, `unknown key "mqtt.listn"`},
		{"unknown section", "colour: red", nil, `unknown key "colour"`},
		{"bad prefix", "topics: {prefix: /devices}", nil, "topics.prefix"},
		{"wildcard prefix", "", []string{"CONTROLPLANE_TOPICS_PREFIX=dev/#"}, "topics.prefix"},
		{"bad level", "log: {level: loud}", nil, "log.level"},
		{"bad listen", "http: {listen: 'nonsense'}", nil, "http.listen"},
		{"empty listen", "", []string{"CONTROLPLANE_MQTT_LISTEN="}, "mqtt.listen"},
		{"bad ws listen", "mqtt: {ws_listen: '9001'}", nil, "mqtt.ws_listen"},
		{"bad device id", "devices: [{id: 'a b'}]", nil, "devices[0].id"},
		{"duplicate device", "devices: [{id: a}, {id: a}]", nil, "devices[1].id"},
		{"bad tag", "devices: [{id: a}, {id: b}, {id: c, tags: [ok, Kitchen]}]", nil, `devices[2].tags: invalid tag "Kitchen"`},
		{"empty tag", "devices: [{id: a, tags: ['']}]", nil, "devices[0].tags: invalid tag: empty"},
		{"too many tags", "devices: [{id: a, tags: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]}]", nil, "devices[0].tags: invalid tag: 17 tags, at most 16"},
		{"unknown device key", "devices: [{id: a, tagz: [x]}]", nil, "tagz"},
		{"wrong type", "http: {listen: [1, 2]}", nil, "listen"},
		{"not yaml", "mqtt: [", nil, "config"},
		{"bad anonymous", "auth: {anonymous: sometimes}", nil, "auth.anonymous"},
		{"bad role", "auth: {users: [{name: a, role: king}]}", nil, "auth.users[0] (a)"},
		{"plaintext password", "auth: {users: [{name: a, role: admin, password_hash: hunter2}]}", nil, "auth.users[0] (a)"},
		{"bad metrics", "http: {metrics: maybe}", nil, "http.metrics"},
		{"bad session ttl", "http: {session_ttl: soon}", nil, "session_ttl"},
		{"tls without cert", "http: {tls: true}", nil, "tls.cert_file"},
		{"negative limit", "limits: {max_browsers: -1}", nil, "limits.max_browsers"},
		{"group named all", "groups: {all: [a]}", nil, "groups.all"},
		{"bad group member", "groups: {kitchen: ['a b']}", nil, "groups.kitchen"},
		{"bad command timeout", "commands: {timeout: 0s}", nil, "commands.timeout"},
		{"tiny packets", "", []string{"CONTROLPLANE_MQTT_MAX_PACKET_SIZE=10"}, "mqtt.max_packet_size"},
		{"bad database", "database: {url: 'mysql://db/x'}", nil, "database.url"},
		{"sqlite without path", "", []string{"CONTROLPLANE_DATABASE_URL=sqlite:"}, "database.url"},
		{"postgres without host", "database: {url: 'postgres:///x'}", nil, "database.url"},
		{"zero retention", "history: {retention: 0s}", nil, "history.retention"},
		{"bad retention", "", []string{"CONTROLPLANE_HISTORY_RETENTION=forever"}, "retention"},
		{"relative public url", "http: {public_url: 'switchyard.lan:8443'}", nil, "http.public_url"},
		{"public url with query", "http: {public_url: 'https://s.lan/?a=b'}", nil, "http.public_url"},
		{"ftp public url", "http: {public_url: 'ftp://s.lan'}", nil, "http.public_url"},
		{"bad firmware size", "firmware: {max_size: 64 apples}", nil, "firmware.max_size"},
		{"zero firmware size", "", []string{"CONTROLPLANE_FIRMWARE_MAX_SIZE=0"}, "firmware.max_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.file), true, tc.env)
			if err == nil {
				t.Fatalf("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, tc.want)
			}
		})
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), true, nil); err == nil {
		t.Error("an explicit --config that does not exist was accepted")
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // 0: an error
	}{
		{"64MiB", 64 << 20}, {"10MB", 10e6}, {"1048576", 1 << 20}, {"1 GiB", 1 << 30}, {"3kib", 3 << 10},
		{"5KB", 5000}, {"7B", 7}, {" 2 gb ", 2e9},
		{"", 0}, {"MiB", 0}, {"0", 0}, {"-1", 0}, {"1.5MiB", 0}, {"10 apples", 0}, {"9999999999GiB", 0},
		{"99999999999999999999", 0},
	} {
		got, err := parseSize(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestConfigUpdateKeys: the defaults of the issue 12 keys, and what they
// turn into.
func TestConfigUpdateKeys(t *testing.T) {
	cfg := defaultConfig(t)
	if got, want := cfg.databaseURL(), memoryDatabase; got != want {
		t.Errorf("database with storage off = %q, want %q", got, want)
	}
	if cfg.maxFirmware != 64<<20 || cfg.History.Retention != 720*time.Hour || cfg.HTTP.PublicURL != "" || cfg.firmwareDir() != "" {
		t.Errorf("defaults: max %d, retention %v, public url %q, firmware dir %q", cfg.maxFirmware, cfg.History.Retention, cfg.HTTP.PublicURL, cfg.firmwareDir())
	}
	cfg, err := loadConfig(writeConfig(t, "storage: {path: /var/lib/sy/retained.log}\nhttp: {public_url: 'https://s.lan:8443/'}\nfirmware: {max_size: 10MB}"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.databaseURL(), "sqlite:/var/lib/sy/switchyard.db"; got != want {
		t.Errorf("database beside storage = %q, want %q", got, want)
	}
	if got, want := cfg.firmwareDir(), "/var/lib/sy/firmware"; got != want {
		t.Errorf("firmware dir = %q, want %q", got, want)
	}
	if cfg.HTTP.PublicURL != "https://s.lan:8443" || cfg.maxFirmware != 10e6 {
		t.Errorf("public url %q (want no trailing slash), max size %d", cfg.HTTP.PublicURL, cfg.maxFirmware)
	}
	cfg, err = loadConfig(writeConfig(t, "storage: {path: x/retained.log}\n"), true, []string{"CONTROLPLANE_DATABASE_URL=postgres://u:p@db.lan/sy"})
	if err != nil || cfg.databaseURL() != "postgres://u:p@db.lan/sy" {
		t.Errorf("database.url from the environment: %v %v", cfg, err)
	}
}

// structKeys lists the dotted mapstructure keys of a struct type, going into
// nested structs (sections) but not into lists or maps (file-only keys).
func structKeys(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, structKeys(f.Type, prefix+tag+".")...)
		} else {
			out = append(out, prefix+tag)
		}
	}
	return out
}

// field is the value of a dotted key in cfg.
func field(t *testing.T, cfg *Config, key string) any {
	t.Helper()
	v := reflect.ValueOf(cfg).Elem()
next:
	for part := range strings.SplitSeq(key, ".") {
		for i := range v.NumField() {
			if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("mapstructure"), ","); tag == part {
				v = v.Field(i)
				continue next
			}
		}
		t.Fatalf("%s: no such field in Config", key)
	}
	if (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0 {
		return nil // empty and nil are the same setting
	}
	return v.Interface()
}

// show prints a field's value for a got/want message.
func show(v any) string {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return fmt.Sprintf("%#v", v)
}

func TestConfigKeysMatchStruct(t *testing.T) {
	inTable := map[string]bool{}
	for _, k := range configKeys {
		if inTable[k.Name] {
			t.Errorf("%s: twice in configKeys", k.Name)
		}
		inTable[k.Name] = true
		if k.FileOnly != (k.Default == nil) {
			t.Errorf("%s: FileOnly %v with default %#v: a key has a default exactly when the environment may set it", k.Name, k.FileOnly, k.Default)
		}
	}
	inStruct := map[string]bool{}
	for _, name := range structKeys(reflect.TypeFor[Config](), "") {
		inStruct[name] = true
		if !inTable[name] {
			t.Errorf("%s: a Config field, missing from configKeys", name)
		}
	}
	for _, k := range configKeys {
		if !inStruct[k.Name] {
			t.Errorf("%s: in configKeys, no Config field has this mapstructure key", k.Name)
		}
	}
}

// defaultConfig loads no file and no environment: every key at its default.
func defaultConfig(t *testing.T) *Config {
	t.Helper()
	cfg, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), false, nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	return cfg
}

// TestConfigEnvSetsEveryKey sets every key but the file-only ones from the
// environment, to its default written as a string: each must be taken
// (no warning) and decode to the default.
func TestConfigEnvSetsEveryKey(t *testing.T) {
	var env []string
	for _, k := range configKeys {
		if k.FileOnly {
			continue
		}
		val := fmt.Sprint(k.Default)
		if s, ok := k.Default.([]string); ok {
			val = strings.Join(s, ",")
		}
		env = append(env, envName(k.Name)+"="+val)
	}
	cfg, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), false, env)
	if err != nil {
		t.Fatalf("environment %q: %v", env, err)
	}
	if len(cfg.warnings) != 0 {
		t.Errorf("warnings %q, want none", cfg.warnings)
	}
	def := defaultConfig(t)
	for _, k := range configKeys {
		if got, want := field(t, cfg, k.Name), field(t, def, k.Name); !reflect.DeepEqual(got, want) {
			t.Errorf("%s from %s: got %s, want the default %s", k.Name, envName(k.Name), show(got), show(want))
		}
	}
}

func TestConfigWarnsOfFileOnlyEnv(t *testing.T) {
	var env, want []string
	for _, k := range configKeys {
		if k.FileOnly {
			name := envName(k.Name)
			if k.Open {
				name += "_KITCHEN"
			}
			env = append(env, name+"=x")
			want = append(want, "environment variable "+name+" is ignored: that key can only be set in the config file")
		}
	}
	// A section and a near miss are no keys.
	for _, name := range []string{"CONTROLPLANE_MQTT", "CONTROLPLANE_MQTT_LISTEN_"} {
		env = append(env, name+"=x")
		want = append(want, "environment variable "+name+" is ignored: no such config key")
	}
	cfg, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), false, env)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !reflect.DeepEqual(cfg.warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", cfg.warnings, want)
	}
}

// shippedDiffers are the keys whose value in the shipped config.yaml is not
// the default, with the reason (config.yaml says it in a comment too).
var shippedDiffers = map[string]string{
	"storage.path": "the shipped file keeps retained state under data/; the default (no file) is memory only",
}

// TestConfigShippedFile loads the repository's config.yaml through the real
// loader: it must load, write out every key and state the defaults.
func TestConfigShippedFile(t *testing.T) {
	const path = "../../config.yaml"
	cfg, err := loadConfig(path, true, nil)
	if err != nil {
		t.Fatalf("shipped %s: %v", path, err)
	}
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	for _, name := range v.AllKeys() {
		if _, ok := lookupKey(name); !ok {
			t.Errorf("%s: in %s, not in configKeys", name, path)
		}
	}
	def := defaultConfig(t)
	for _, k := range configKeys {
		if !v.InConfig(k.Name) {
			t.Errorf("%s: missing from %s (the shipped file writes out every key)", k.Name, path)
		}
		got, want := field(t, cfg, k.Name), field(t, def, k.Name)
		if why, ok := shippedDiffers[k.Name]; ok {
			if reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s states the default %s, but shippedDiffers says it differs (%s)", k.Name, path, show(got), why)
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s has %s, want the default %s (or say why in shippedDiffers)", k.Name, path, show(got), show(want))
		}
	}
}

// section returns the lines of the markdown section whose "## " heading
// starts with heading, up to the next "## " heading.
func section(t *testing.T, path, heading string) (title string, lines []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			if title != "" {
				break
			}
			if strings.HasPrefix(line, "## "+heading) {
				title = strings.TrimPrefix(line, "## ")
			}
			continue
		}
		if title != "" {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if title == "" {
		t.Fatalf("%s: no section %q", path, "## "+heading)
	}
	return title, lines
}

// tableRows parses the first markdown table in lines: its header cells and
// its rows, cells trimmed.
func tableRows(lines []string) (header []string, rows [][]string) {
	cells := func(line string) []string {
		c := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range c {
			c[i] = strings.TrimSpace(c[i])
		}
		return c
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "|") {
			if header != nil {
				break
			}
			continue
		}
		switch {
		case header == nil:
			header = cells(line)
		case strings.HasPrefix(line, "|---"):
		default:
			rows = append(rows, cells(line))
		}
	}
	return header, rows
}

// docDefault is how the docs write a default: the value in backquotes, or
// "empty"; a gloss in parentheses may follow.
func docDefault(d any) string {
	switch d := d.(type) {
	case nil:
		return "empty"
	case string:
		if d == "" {
			return "empty"
		}
		return "`" + d + "`"
	case []string:
		if len(d) == 0 {
			return "empty"
		}
		return "`" + strings.Join(d, ",") + "`"
	}
	return "`" + fmt.Sprint(d) + "`"
}

// TestConfigDocsTable holds the table of docs/protocol.md section 9 to
// configKeys: the same keys, environment variables and defaults.
func TestConfigDocsTable(t *testing.T) {
	const path = "../../docs/protocol.md"
	_, lines := section(t, path, "9. Configuration")
	header, rows := tableRows(lines)
	if want := []string{"key", "env var", "default", "meaning"}; !reflect.DeepEqual(header, want) {
		t.Fatalf("%s: configuration table header %q, want %q", path, header, want)
	}
	documented := map[string]bool{}
	for _, row := range rows {
		name := strings.Trim(row[0], "`")
		if documented[name] {
			t.Errorf("%s: %s: documented twice", path, name)
		}
		documented[name] = true
		k, ok := lookupKey(name)
		if !ok || k.Name != name {
			t.Errorf("%s: %s: documented, not in configKeys", path, row[0])
			continue
		}
		wantEnv := "`" + envName(k.Name) + "`"
		if k.FileOnly {
			wantEnv = "— (file only)"
		}
		if row[1] != wantEnv {
			t.Errorf("%s: %s: env var %q, want %q", path, name, row[1], wantEnv)
		}
		if want := docDefault(k.Default); row[2] != want && !strings.HasPrefix(row[2], want+" (") {
			t.Errorf("%s: %s: default %q, want %q (optionally followed by a gloss in parentheses)", path, name, row[2], want)
		}
	}
	for _, k := range configKeys {
		if !documented[k.Name] {
			t.Errorf("%s: %s: missing from the configuration table", path, k.Name)
		}
	}
}

// TestConfigReadmeLinksDocs keeps one copy of the key table: the README's
// Configuration section links to docs/protocol.md's instead of repeating it.
func TestConfigReadmeLinksDocs(t *testing.T) {
	title, _ := section(t, "../../docs/protocol.md", "9. Configuration")
	// GitHub's anchor: lower case, punctuation dropped, spaces as dashes.
	anchor := strings.Map(func(r rune) rune {
		switch {
		case r == ' ':
			return '-'
		case r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			return r
		}
		return -1
	}, strings.ToLower(title))
	link := "(docs/protocol.md#" + anchor + ")"
	_, lines := section(t, "../../README.md", "Configuration")
	if body := strings.Join(lines, "\n"); !strings.Contains(body, link) {
		t.Errorf("README.md: the Configuration section does not link %s", link)
	}
	if _, rows := tableRows(lines); len(rows) != 0 {
		t.Errorf("README.md: the Configuration section has a table of %d rows; keep the keys in docs/protocol.md only", len(rows))
	}
}

// FuzzLoadConfig feeds arbitrary files to the config loader: it must never
// panic, and whatever it accepts must be valid.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"", "mqtt: {listen: ':1'}", "devices: [{id: a}]", "auth: {users: [{name: a, role: admin}]}",
		"http: {allowed_origins: 'a,b'}", "log: {level: [1]}", "topics: {prefix: 'a/+'}", "\x00\xff",
		"limits: {browser_command_rate: 1e309}", "http: {session_ttl: -5s}",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(p, true, nil)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
	})
}
