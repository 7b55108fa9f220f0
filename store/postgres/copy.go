package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Bulk writes use COPY in PostgreSQL's binary format, encoded here from
// the few Go types the queue writes, by the column's declared type: pgx's
// general encoder picks a plan per value through reflection, which cost
// more client CPU than everything else in a 10,000-job EnqueueMany.

// copyHeader starts every binary COPY stream: signature, flags, no
// header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// pgEpoch is where PostgreSQL's timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// encodeCopy writes rows in the binary COPY format; types are the
// columns' PostgreSQL types (text, uuid, bytea, timestamptz, bigint,
// integer, jsonb). A nil value, or a nil pointer, is NULL.
func encodeCopy(buf []byte, types []string, rows [][]any) ([]byte, error) {
	buf = append(buf, copyHeader...)
	for r, row := range rows {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(row)))
		for c, v := range row {
			var err error
			if buf, err = appendCopyValue(buf, types[c], v); err != nil {
				return nil, fmt.Errorf("row %d, column %d: %w", r, c, err)
			}
		}
	}
	return binary.BigEndian.AppendUint16(buf, 0xffff), nil
}

func appendCopyValue(buf []byte, typ string, v any) ([]byte, error) {
	null := func() []byte { return binary.BigEndian.AppendUint32(buf, 0xffffffff) }
	field := func(b []byte) []byte {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
		return append(buf, b...)
	}
	switch x := v.(type) {
	case nil:
		return null(), nil
	case *string:
		if x == nil {
			return null(), nil
		}
		v = *x
	case *uuid.UUID:
		if x == nil {
			return null(), nil
		}
		v = *x
	case *time.Time:
		if x == nil {
			return null(), nil
		}
		v = *x
	case []byte:
		if x == nil {
			return null(), nil
		}
	}
	switch typ {
	case "text":
		if s, ok := v.(string); ok {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
			return append(buf, s...), nil
		}
	case "jsonb":
		if s, ok := v.(string); ok {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)+1))
			buf = append(buf, 1) // jsonb format version
			return append(buf, s...), nil
		}
	case "bytea":
		if b, ok := v.([]byte); ok {
			return field(b), nil
		}
	case "uuid":
		if id, ok := v.(uuid.UUID); ok {
			return field(id[:]), nil
		}
	case "timestamptz":
		if t, ok := v.(time.Time); ok {
			buf = binary.BigEndian.AppendUint32(buf, 8)
			return binary.BigEndian.AppendUint64(buf, uint64(t.Sub(pgEpoch).Microseconds())), nil
		}
	case "bigint":
		if n, ok := v.(int64); ok {
			buf = binary.BigEndian.AppendUint32(buf, 8)
			return binary.BigEndian.AppendUint64(buf, uint64(n)), nil
		}
	case "integer":
		if n, ok := v.(int); ok {
			buf = binary.BigEndian.AppendUint32(buf, 4)
			return binary.BigEndian.AppendUint32(buf, uint32(int32(n))), nil
		}
	}
	return nil, fmt.Errorf("cannot write %T as %s", v, typ)
}

// copyRows writes rows into table with one binary COPY.
func copyRows(ctx context.Context, tx querier, table string, cols, types []string, rows [][]any) error {
	data, err := encodeCopy(make([]byte, 0, 256*len(rows)), types, rows)
	if err != nil {
		return err
	}
	sql := "COPY " + table + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
	_, err = tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), sql)
	return err
}
