package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"switchyard/rollout"
)

// boardRow is a board's row in rollout_boards, less its keys.
type boardRow struct {
	wave, position int
	state, err     string
	job            string
	since          int64
	update         string
}

// waveRow is a wave as the rollouts row's waves column holds it.
type waveRow struct {
	Size  int               `json:"size"`
	State rollout.WaveState `json:"state"`
}

// insertBatch is how many boards one INSERT writes: 9 values each, well
// under both SQLite's and PostgreSQL's limit on parameters.
const insertBatch = 100

// CreateRollout records a new rollout and all its boards in one
// transaction; ErrExists when its id is recorded already.
func (s *DB) CreateRollout(ctx context.Context, r *rollout.Rollout) error {
	return s.writeRollout(ctx, "create", r, func(tx *sql.Tx, spec, waves string) (func(), error) {
		res, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO rollouts
			(id, firmware, version, platform, state, reason, created, updated, spec, waves, jobs)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			r.ID, r.Firmware, r.Version, r.Platform, string(r.State), r.Reason,
			nanos(r.Created), nanos(r.Updated), spec, waves, r.Jobs)
		if err := oneRow(res, err, ErrExists); err != nil {
			return nil, err
		}
		if err := s.insertBoards(ctx, tx, r.ID, r, nil); err != nil {
			return nil, err
		}
		return func() { s.remember(r, boardRows(r)) }, nil
	})
}

// SaveRollout writes a rollout's row and those of its boards that changed
// since this DB last wrote them, in one transaction; ErrNotFound when the
// rollout was never created.
//
// What was last written is kept in memory per rollout (saved), so a save
// that changes one board of 1,000 writes two rows, and allocates for that
// board only: a running rollout is saved at each job it sends, dozens of
// times a second while a large wave starts. This assumes that
// between two saves of a rollout by this DB nobody else writes its
// boards: the contract lets one control plane at a time drive rollouts,
// and Rollouts forgets what it kept, so a control plane that (again)
// takes over, and loads the rollouts to do so, compares with the
// database's rows on its first save.
func (s *DB) SaveRollout(ctx context.Context, r *rollout.Rollout) error {
	return s.writeRollout(ctx, "save", r, func(tx *sql.Tx, spec, waves string) (func(), error) {
		res, err := tx.ExecContext(ctx, s.d.q(`UPDATE rollouts SET firmware = ?, version = ?, platform = ?,
			state = ?, reason = ?, created = ?, updated = ?, spec = ?, waves = ?, jobs = ? WHERE id = ?`),
			r.Firmware, r.Version, r.Platform, string(r.State), r.Reason,
			nanos(r.Created), nanos(r.Updated), spec, waves, r.Jobs, r.ID)
		if err := oneRow(res, err, ErrNotFound); err != nil {
			return nil, err
		}
		prev := s.saved[r.ID]
		if prev == nil {
			if prev, err = s.readBoardRows(ctx, tx, r.ID); err != nil {
				return nil, err
			}
		}
		d := diffBoards(r, prev)
		if err := s.writeDiff(ctx, tx, r, d); err != nil {
			return nil, err
		}
		return func() {
			d.apply(prev)
			s.remember(r, prev)
		}, nil
	})
}

// writeRollout runs write in a transaction with r's spec and waves
// encoded, s.saveMu held; once it is committed, it runs what write
// returned (which remembers the rows written). op names the operation in
// errors.
func (s *DB) writeRollout(ctx context.Context, op string, r *rollout.Rollout,
	write func(tx *sql.Tx, spec, waves string) (committed func(), err error)) error {
	fail := func(err error) error { return fmt.Errorf("%s rollout %s: %w", op, r.ID, err) }
	spec, waves, err := encodeRollout(r)
	if err != nil {
		return fail(err)
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback() // after Commit it does nothing
	committed, err := write(tx, spec, waves)
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		delete(s.saved, r.ID) // the transaction may or may not have been applied
		return fail(err)
	}
	committed()
	return nil
}

// remember keeps rows as r's boards last written; a rollout that is
// finished with every board final is forgotten instead, since it is
// unlikely to be saved again (and would be read back if it were).
// s.saveMu is held.
func (s *DB) remember(r *rollout.Rollout, rows map[string]boardRow) {
	if r.State.Finished() {
		final := true
		for _, row := range rows {
			final = final && rollout.BoardState(row.state).Final()
		}
		if final {
			delete(s.saved, r.ID)
			return
		}
	}
	s.saved[r.ID] = rows
}

// boardDiff is what a save writes of a rollout's boards: the rows that
// changed or are new since the last save, and the boards no longer there.
type boardDiff struct {
	changed []boardChange
	added   map[string]bool // of changed, those to insert; nil: none
	gone    []string
}

// boardChange is one board's row to write.
type boardChange struct {
	id  string
	row boardRow
}

// diffBoards compares r's boards with prev, the rows last written.
func diffBoards(r *rollout.Rollout, prev map[string]boardRow) boardDiff {
	var d boardDiff
	n := 0
	for w, wave := range r.Waves {
		for p, b := range wave.Boards {
			n++
			row := boardRow{wave: w, position: p, state: string(b.State), err: b.Error,
				job: b.Job, since: nanos(b.Since), update: b.Update}
			old, ok := prev[b.ID]
			if ok && old == row {
				continue
			}
			d.changed = append(d.changed, boardChange{b.ID, row})
			if !ok {
				if d.added == nil {
					d.added = map[string]bool{}
				}
				d.added[b.ID] = true
			}
		}
	}
	if n-len(d.added) < len(prev) { // some of prev are not in r
		ids := make(map[string]bool, n)
		for _, wave := range r.Waves {
			for _, b := range wave.Boards {
				ids[b.ID] = true
			}
		}
		for id := range prev {
			if !ids[id] {
				d.gone = append(d.gone, id)
			}
		}
	}
	return d
}

// apply makes rows what the save that wrote d left in the database.
func (d boardDiff) apply(rows map[string]boardRow) {
	for _, c := range d.changed {
		rows[c.id] = c.row
	}
	for _, id := range d.gone {
		delete(rows, id)
	}
}

// writeDiff updates the boards of r that changed, inserts those that are
// new and deletes those no longer there.
func (s *DB) writeDiff(ctx context.Context, tx *sql.Tx, r *rollout.Rollout, d boardDiff) error {
	var update *sql.Stmt
	for _, c := range d.changed {
		if d.added[c.id] {
			continue
		}
		if update == nil {
			var err error
			update, err = tx.PrepareContext(ctx, s.d.q(`UPDATE rollout_boards SET wave = ?, position = ?,
				state = ?, error = ?, job = ?, since = ?, update_state = ?
				WHERE rollout_id = ? AND device_id = ?`))
			if err != nil {
				return err
			}
			defer update.Close()
		}
		row := c.row
		if _, err := update.ExecContext(ctx, row.wave, row.position, row.state, row.err, row.job, row.since, row.update, r.ID, c.id); err != nil {
			return fmt.Errorf("board %s: %w", c.id, err)
		}
	}
	for _, id := range d.gone {
		if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM rollout_boards WHERE rollout_id = ? AND device_id = ?`), r.ID, id); err != nil {
			return fmt.Errorf("board %s: %w", id, err)
		}
	}
	if len(d.added) > 0 {
		return s.insertBoards(ctx, tx, r.ID, r, d.added)
	}
	return nil
}

// insertBoards inserts the boards of r (those in only, when only is not
// nil), insertBatch rows per statement.
func (s *DB) insertBoards(ctx context.Context, tx *sql.Tx, id string, r *rollout.Rollout, only map[string]bool) error {
	const cols = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
	args := make([]any, 0, 9*insertBatch)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		n := len(args) / 9
		query := `INSERT INTO rollout_boards
			(rollout_id, device_id, wave, position, state, error, job, since, update_state) VALUES ` +
			strings.Repeat(cols+", ", n-1) + cols
		if _, err := tx.ExecContext(ctx, s.d.q(query), args...); err != nil {
			return fmt.Errorf("insert boards: %w", err)
		}
		args = args[:0]
		return nil
	}
	for w, wave := range r.Waves {
		for p, b := range wave.Boards {
			if only != nil && !only[b.ID] {
				continue
			}
			args = append(args, id, b.ID, w, p, string(b.State), b.Error, b.Job, nanos(b.Since), b.Update)
			if len(args) == 9*insertBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// readBoardRows reads the rows of rollout id's boards.
func (s *DB) readBoardRows(ctx context.Context, tx *sql.Tx, id string) (map[string]boardRow, error) {
	rows, err := tx.QueryContext(ctx, s.d.q(`SELECT device_id, wave, position, state, error, job, since, update_state
		FROM rollout_boards WHERE rollout_id = ?`), id)
	if err != nil {
		return nil, fmt.Errorf("read boards: %w", err)
	}
	defer rows.Close()
	m := map[string]boardRow{}
	for rows.Next() {
		var dev string
		var b boardRow
		if err := rows.Scan(&dev, &b.wave, &b.position, &b.state, &b.err, &b.job, &b.since, &b.update); err != nil {
			return nil, fmt.Errorf("read boards: %w", err)
		}
		m[dev] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read boards: %w", err)
	}
	return m, nil
}

// Rollouts returns every rollout, newest first, with its waves and their
// boards in their order, and Counts computed from the boards' states.
//
// A control plane that loads rollouts may be taking over from another
// one, so the next save of each compares with the database's rows rather
// than with what this DB last wrote.
func (s *DB) Rollouts(ctx context.Context) ([]*rollout.Rollout, error) {
	list, err := s.loadRollouts(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("load rollouts: %w", err)
	}
	s.saveMu.Lock() // not before: a save may be waiting for the connection loadRollouts held
	clear(s.saved)
	s.saveMu.Unlock()
	return list, nil
}

// Rollout returns rollout id as Rollouts would; ErrNotFound when there is
// none. It leaves what this DB last wrote alone: a control plane that
// follows another's rollouts reads them, it does not save them.
func (s *DB) Rollout(ctx context.Context, id string) (*rollout.Rollout, error) {
	list, err := s.loadRollouts(ctx, id)
	if err == nil && len(list) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load rollout %s: %w", id, err)
	}
	return list[0], nil
}

// RolloutStamps returns every rollout's Updated by id: a control plane
// that follows another's rollouts reloads those whose stamp changed.
func (s *DB) RolloutStamps(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, updated FROM rollouts`)
	if err != nil {
		return nil, fmt.Errorf("rollout stamps: %w", err)
	}
	defer rows.Close()
	m := map[string]time.Time{}
	for rows.Next() {
		var id string
		var updated int64
		if err := rows.Scan(&id, &updated); err != nil {
			return nil, fmt.Errorf("rollout stamps: %w", err)
		}
		m[id] = fromNanos(updated)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rollout stamps: %w", err)
	}
	return m, nil
}

// loadRollouts reads the rollouts in one read-only transaction: every one,
// or rollout id only when id is not "".
func (s *DB) loadRollouts(ctx context.Context, id string) ([]*rollout.Rollout, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead // one snapshot for both queries
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // read only: nothing to commit
	var where, boardsWhere string
	var args []any
	if id != "" {
		where, boardsWhere, args = s.d.q("WHERE id = ?"), s.d.q("WHERE rollout_id = ?"), []any{id}
	}
	list, err := readRollouts(ctx, tx, where, args...)
	if err != nil {
		return nil, err
	}
	byID := map[string]*rollout.Rollout{}
	for _, r := range list {
		byID[r.ID] = r
	}
	if err := s.loadBoards(ctx, tx, byID, boardsWhere, args...); err != nil {
		return nil, err
	}
	for _, r := range list {
		r.Recount()
	}
	return list, nil
}

// readRollouts reads the rollouts' rows (those where selects, with args),
// newest first, with their waves and no boards yet.
func readRollouts(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]*rollout.Rollout, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, firmware, version, platform, state, reason, created, updated, spec, waves, jobs
		FROM rollouts `+where+` ORDER BY created DESC, id DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []*rollout.Rollout
	for rows.Next() {
		r := new(rollout.Rollout)
		var state, spec, waves string
		var created, updated int64
		if err := rows.Scan(&r.ID, &r.Firmware, &r.Version, &r.Platform, &state, &r.Reason,
			&created, &updated, &spec, &waves, &r.Jobs); err != nil {
			return nil, err
		}
		r.State, r.Created, r.Updated = rollout.State(state), fromNanos(created), fromNanos(updated)
		if err := json.Unmarshal([]byte(spec), &r.Spec); err != nil {
			return nil, fmt.Errorf("rollout %s: spec: %w", r.ID, err)
		}
		var ws []waveRow
		if err := json.Unmarshal([]byte(waves), &ws); err != nil {
			return nil, fmt.Errorf("rollout %s: waves: %w", r.ID, err)
		}
		r.Waves = make([]rollout.Wave, len(ws))
		for i, w := range ws {
			r.Waves[i] = rollout.Wave{Size: w.Size, State: w.State, Boards: []rollout.Board{}}
		}
		list = append(list, r)
	}
	return list, rows.Err()
}

// loadBoards appends every board (of the rollouts where selects, with
// args) to its rollout's wave, in order.
func (s *DB) loadBoards(ctx context.Context, tx *sql.Tx, byID map[string]*rollout.Rollout, where string, args ...any) error {
	rows, err := tx.QueryContext(ctx, `SELECT rollout_id, device_id, wave, state, error, job, since, update_state
		FROM rollout_boards `+where+` ORDER BY rollout_id, wave, position`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var wave int
		var b rollout.Board
		var state string
		var since int64
		if err := rows.Scan(&id, &b.ID, &wave, &state, &b.Error, &b.Job, &since, &b.Update); err != nil {
			return err
		}
		b.State, b.Since = rollout.BoardState(state), fromNanos(since)
		r := byID[id]
		if r == nil || wave < 0 || wave >= len(r.Waves) {
			return fmt.Errorf("rollout %s: board %s in wave %d, which the rollout does not have", id, b.ID, wave)
		}
		r.Waves[wave].Boards = append(r.Waves[wave].Boards, b)
	}
	return rows.Err()
}

// encodeRollout returns the spec and the waves' sizes and states as the
// rollouts row holds them. The spec is JSON in the POST body's shape
// (rollout.Spec's MarshalJSON and UnmarshalJSON).
func encodeRollout(r *rollout.Rollout) (spec, waves string, err error) {
	b, err := json.Marshal(&r.Spec) // a pointer, so a MarshalJSON on either receiver runs
	if err != nil {
		return "", "", fmt.Errorf("spec: %w", err)
	}
	ws := make([]waveRow, len(r.Waves))
	for i, w := range r.Waves {
		ws[i] = waveRow{Size: w.Size, State: w.State}
	}
	wb, err := json.Marshal(ws)
	if err != nil {
		return "", "", fmt.Errorf("waves: %w", err)
	}
	return string(b), string(wb), nil
}

// boardRows returns r's boards as rows, by device id.
func boardRows(r *rollout.Rollout) map[string]boardRow {
	n := 0
	for _, w := range r.Waves {
		n += len(w.Boards)
	}
	m := make(map[string]boardRow, n)
	for w, wave := range r.Waves {
		for p, b := range wave.Boards {
			m[b.ID] = boardRow{wave: w, position: p, state: string(b.State), err: b.Error,
				job: b.Job, since: nanos(b.Since), update: b.Update}
		}
	}
	return m
}
