package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/devices"
)

// Why a file of our own and not one of Mochi's storage hooks:
//
// Only retained messages must survive a restart (board state: status, led,
// info). Mochi's storage hooks persist sessions, subscriptions and inflight
// messages too, and they write synchronously inside the publishing client's
// goroutine: an fsync per retained publish on the board's read loop (pebble
// with Sync), or a deprecated store that loses inflight ids (bolt), or a large
// LSM engine and its background goroutines for a few hundred kilobytes of
// state (badger, pebble). They also persist the gateway's inline
// subscriptions, which come back as dead subscriptions of client "inline".
//
// retainLog is an append-only log of retained messages with a CRC per
// record. The Mochi hook only copies the message into a map under a mutex
// (it never blocks on I/O); one writer goroutine appends what changed and
// fsyncs, many messages per fsync (group commit). A torn or corrupt tail
// after a crash is detected by length and CRC and dropped at the next start,
// so a kill -9 loses at most the messages of the last unfinished group
// commit (milliseconds) and never corrupts what was written before. At start,
// and when the log grows past twice its live size, it is compacted into a
// new file written beside it, fsynced and renamed over it.

// logMagic starts every retained-message log file.
const logMagic = "SYRET1\n\x00"

// recordHeader is the length (uint32) and CRC-32 (uint32) before each
// record body.
const recordHeader = 8

// retainRecord is one retained message, or a deletion when payload is empty.
type retainRecord struct {
	qos     byte
	created int64
	payload []byte
}

// retainLog persists retained messages. It is a Mochi hook.
type retainLog struct {
	mqtt.HookBase
	path   string
	topics devices.Topics
	log    *slog.Logger

	mu      sync.Mutex              // guards pending and err
	pending map[string]retainRecord // changes not yet handed to the writer
	err     error                   // first write error, reported by Close

	kick chan struct{} // cap 1: pending is not empty
	stop chan struct{} // closed by Close: the writer flushes and exits
	wg   sync.WaitGroup

	// Owned by the writer goroutine after openRetainLog returns.
	f         *os.File
	live      map[string]retainRecord // the log's contents: latest per topic
	liveBytes int64                   // what live takes as records: kept with live, for compaction
	size      int64                   // bytes in f
	restore   []storage.Message       // what the log held at start, for Mochi

	closeOnce sync.Once
	closeErr  error
}

// openRetainLog reads the log at path (creating it if missing), rewrites
// every stored status "online" to "offline" (no board is connected to a
// broker that has just started), compacts it and starts the writer.
func openRetainLog(path string, topics devices.Topics, log *slog.Logger) (*retainLog, error) {
	l, err := loadRetainLog(path, topics, log)
	if err != nil {
		return nil, err
	}
	l.wg.Add(1)
	go l.writer() // ends when Close closes l.stop
	return l, nil
}

// loadRetainLog is openRetainLog without the writer goroutine.
func loadRetainLog(path string, topics devices.Topics, log *slog.Logger) (*retainLog, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage %s: %w", path, err)
		}
	}
	live, torn, err := readRetainLog(path)
	if err != nil {
		return nil, err
	}
	if torn > 0 {
		log.Warn("storage: dropped a torn or corrupt tail (the end of an interrupted write)", "path", path, "bytes", torn)
	}
	offline := 0
	for topic, r := range live {
		if _, k, ok := topics.Parse(topic); ok && k == devices.KindStatus {
			if online, err := devices.ParseStatus(r.payload); err == nil && online {
				r.payload = []byte(devices.Offline)
				live[topic] = r
				offline++
			}
		}
	}
	l := &retainLog{
		path:    path,
		topics:  topics,
		log:     log,
		pending: map[string]retainRecord{},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		live:    map[string]retainRecord{},
	}
	for topic, r := range live {
		l.setLive(topic, r)
	}
	if err := l.compact(); err != nil {
		return nil, err
	}
	for topic, r := range live {
		l.restore = append(l.restore, storage.Message{
			TopicName:   topic,
			Payload:     r.payload,
			Created:     r.created,
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true, Qos: r.qos},
		})
	}
	sort.Slice(l.restore, func(i, j int) bool { return l.restore[i].TopicName < l.restore[j].TopicName })
	log.Info("storage: retained messages restored", "path", path, "messages", len(live), "marked_offline", offline)
	return l, nil
}

// readRetainLog returns the live contents of the log at path and how many
// bytes at its end were torn or corrupt. A missing file is empty.
func readRetainLog(path string) (map[string]retainRecord, int, error) {
	live := map[string]retainRecord{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return live, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storage %s: %w", path, err)
	}
	if len(data) == 0 {
		return live, 0, nil
	}
	if !bytes.HasPrefix(data, []byte(logMagic)) {
		return nil, 0, fmt.Errorf("storage %s: not a Switchyard retained-message file (refusing to overwrite it)", path)
	}
	rest := data[len(logMagic):]
	for len(rest) > 0 {
		topic, r, n, ok := decodeRecord(rest)
		if !ok {
			return live, len(rest), nil
		}
		if len(r.payload) == 0 {
			delete(live, topic)
		} else {
			live[topic] = r
		}
		rest = rest[n:]
	}
	return live, 0, nil
}

// appendRecord appends one record: length, CRC, then the body
// qos(1) created(8) topicLen(2) topic payload.
func appendRecord(b []byte, topic string, r retainRecord) []byte {
	bodyLen := 1 + 8 + 2 + len(topic) + len(r.payload)
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, uint32(bodyLen))
	b = append(b, 0, 0, 0, 0) // CRC, filled in below
	b = append(b, r.qos)
	b = binary.BigEndian.AppendUint64(b, uint64(r.created))
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	b = append(b, r.payload...)
	binary.BigEndian.PutUint32(b[start+4:], crc32.ChecksumIEEE(b[start+recordHeader:]))
	return b
}

// decodeRecord reads one record from b; ok is false if b does not start
// with a whole, intact record.
func decodeRecord(b []byte) (topic string, r retainRecord, n int, ok bool) {
	if len(b) < recordHeader {
		return "", r, 0, false
	}
	bodyLen := int(binary.BigEndian.Uint32(b))
	if bodyLen < 11 || len(b)-recordHeader < bodyLen {
		return "", r, 0, false
	}
	body := b[recordHeader : recordHeader+bodyLen]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(b[4:]) {
		return "", r, 0, false
	}
	topicLen := int(binary.BigEndian.Uint16(body[9:]))
	if 11+topicLen > len(body) {
		return "", r, 0, false
	}
	r.qos = body[0]
	r.created = int64(binary.BigEndian.Uint64(body[1:]))
	topic = string(body[11 : 11+topicLen])
	r.payload = append([]byte(nil), body[11+topicLen:]...)
	return topic, r, recordHeader + bodyLen, true
}

// ID implements mqtt.Hook.
func (l *retainLog) ID() string { return "switchyard-retain-log" }

// Provides implements mqtt.Hook.
func (l *retainLog) Provides(b byte) bool {
	return b == mqtt.OnRetainMessage || b == mqtt.OnRetainedExpired || b == mqtt.StoredRetainedMessages
}

// StoredRetainedMessages implements mqtt.Hook: what the log held at start.
func (l *retainLog) StoredRetainedMessages() ([]storage.Message, error) {
	return l.restore, nil
}

// OnRetainMessage implements mqtt.Hook. It runs on the publishing client's
// goroutine: it copies the message and never blocks.
func (l *retainLog) OnRetainMessage(_ *mqtt.Client, pk packets.Packet, _ int64) {
	created := pk.Created
	if created == 0 {
		created = time.Now().Unix()
	}
	l.put(pk.TopicName, retainRecord{
		qos:     pk.FixedHeader.Qos,
		created: created,
		payload: append([]byte(nil), pk.Payload...),
	})
}

// OnRetainedExpired implements mqtt.Hook.
func (l *retainLog) OnRetainedExpired(topic string) {
	l.put(topic, retainRecord{})
}

func (l *retainLog) put(topic string, r retainRecord) {
	l.mu.Lock()
	l.pending[topic] = r
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// writer is the only goroutine that touches l.f, l.live and l.size.
func (l *retainLog) writer() {
	defer l.wg.Done()
	for {
		select {
		case <-l.kick:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
	}
}

// flush appends the pending changes to the log and syncs it.
func (l *retainLog) flush() {
	l.mu.Lock()
	batch := l.pending
	n := len(batch) // read under mu: an empty batch is still l.pending, which put writes
	if n > 0 {
		l.pending = make(map[string]retainRecord, n)
	}
	l.mu.Unlock()
	if n == 0 {
		return
	}
	var buf []byte
	for topic, r := range batch {
		buf = appendRecord(buf, topic, r)
		l.setLive(topic, r)
	}
	err := l.write(buf)
	if err == nil && l.size > 1<<20 && l.size > 2*l.liveBytes {
		err = l.compact()
	}
	if err != nil {
		l.mu.Lock()
		if l.err == nil {
			l.err = err
			l.log.Error("storage write failed; retained messages may not survive a restart", "path", l.path, "err", err)
		}
		l.mu.Unlock()
	}
}

func (l *retainLog) write(buf []byte) error {
	if _, err := l.f.Write(buf); err != nil {
		return fmt.Errorf("storage %s: write: %w", l.path, err)
	}
	l.size += int64(len(buf))
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("storage %s: sync: %w", l.path, err)
	}
	return nil
}

// setLive records topic's latest message in live (an empty payload removes
// it) and keeps liveBytes current.
func (l *retainLog) setLive(topic string, r retainRecord) {
	if old, ok := l.live[topic]; ok {
		l.liveBytes -= recordSize(topic, old)
		delete(l.live, topic)
	}
	if len(r.payload) > 0 {
		l.live[topic] = r
		l.liveBytes += recordSize(topic, r)
	}
}

// recordSize is the size of topic's record in the log.
func recordSize(topic string, r retainRecord) int64 {
	return recordHeader + 11 + int64(len(topic)+len(r.payload))
}

// compact writes l.live to a new file, syncs it, renames it over the log
// and keeps it open for appending.
func (l *retainLog) compact() error {
	topics := make([]string, 0, len(l.live))
	for topic := range l.live {
		topics = append(topics, topic)
	}
	sort.Strings(topics)
	buf := []byte(logMagic)
	for _, topic := range topics {
		buf = appendRecord(buf, topic, l.live[topic])
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("storage %s: %w", l.path, err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("storage %s: write: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage %s: sync: %w", tmp, err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		f.Close()
		return fmt.Errorf("storage %s: %w", l.path, err)
	}
	if d, err := os.Open(filepath.Dir(l.path)); err == nil {
		_ = d.Sync() // make the rename durable; best effort where unsupported
		d.Close()
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.size = f, int64(len(buf))
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("storage %s: %w", l.path, err)
	}
	return nil
}

// Close flushes what is pending, stops the writer and closes the file. It
// returns the first write error, if any. It is safe to call more than once.
func (l *retainLog) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		l.wg.Wait()
		if l.f != nil {
			if err := l.f.Close(); err != nil {
				l.closeErr = fmt.Errorf("storage %s: close: %w", l.path, err)
			}
		}
		l.mu.Lock()
		if l.err != nil {
			l.closeErr = l.err
		}
		l.mu.Unlock()
	})
	return l.closeErr
}
