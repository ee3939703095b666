package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"switchyard/devices"
)

// The names and tags people give boards at run time (devices.Meta), one
// row a board in device_meta.

// SaveDeviceMeta saves m, replacing what was saved for board m.ID.
func (s *DB) SaveDeviceMeta(ctx context.Context, m devices.Meta) error {
	var tags sql.NullString
	if m.HasTags {
		list := m.Tags
		if list == nil {
			list = []string{} // "[]": set to none, not NULL
		}
		b, err := json.Marshal(list)
		if err != nil {
			return fmt.Errorf("save device meta %s: %w", m.ID, err)
		}
		tags = sql.NullString{String: string(b), Valid: true}
	}
	_, err := s.db.ExecContext(ctx, s.d.q(`INSERT INTO device_meta (id, name, tags) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, tags = excluded.tags`), m.ID, m.Name, tags)
	if err != nil {
		return fmt.Errorf("save device meta %s: %w", m.ID, err)
	}
	return nil
}

// DeviceMeta returns every board's saved meta, sorted by id.
func (s *DB) DeviceMeta(ctx context.Context) ([]devices.Meta, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, tags FROM device_meta ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load device meta: %w", err)
	}
	defer rows.Close()
	var list []devices.Meta
	for rows.Next() {
		var m devices.Meta
		var tags sql.NullString
		if err := rows.Scan(&m.ID, &m.Name, &tags); err != nil {
			return nil, fmt.Errorf("load device meta: %w", err)
		}
		if tags.Valid {
			if err := json.Unmarshal([]byte(tags.String), &m.Tags); err != nil {
				return nil, fmt.Errorf("load device meta %s: tags %q: %w", m.ID, tags.String, err)
			}
			if m.Tags == nil {
				m.Tags = []string{}
			}
			m.HasTags = true
		}
		list = append(list, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load device meta: %w", err)
	}
	return list, nil
}
