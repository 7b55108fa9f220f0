package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/offline"
)

// writeChunk is how many entries Write reads and checks at a time.
var writeChunk int64 = 4096

// WriteParams say what Write seals.
type WriteParams struct {
	Store driver.AuditStore
	// Key signs the checkpoint at the range's end, unless one of that
	// size is stored already.
	Key   *audit.PrivateKey
	Chain chain.Key
	// Before ends the range: a chain_pos (the entries before it), or,
	// with BeforeTime set instead, the entries whose t_hlc's physical
	// time is before it. The range starts where the chain's last archive
	// ends (its genesis for the first).
	Before     int64
	BeforeTime time.Time
	Dir        string // created; it must not exist or be empty
	Now        time.Time
}

// ParseBefore reads `--before`: a chain_pos (digits), or an RFC 3339 time.
func ParseBefore(s string) (pos int64, at time.Time, err error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0, time.Time{}, fmt.Errorf("--before %d: a chain_pos must be positive (the entries before it are archived)", n)
		}
		return n, time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("--before %q: neither a chain_pos nor an RFC 3339 time", s)
	}
	return 0, t, nil
}

// Write seals the next range of p.Chain into p.Dir and records it
// (driver.LogArchive). It refuses a range whose entries do not pass the
// entry checks, do not join the chain's previous archive, or do not hash
// to the root of the chain's stored tree: an archive is written only of
// a chain that verifies. A Write that fails leaves what it wrote of the
// directory, and records nothing.
func Write(ctx context.Context, p WriteParams) (*Manifest, error) {
	k := p.Chain
	fail := func(format string, args ...any) (*Manifest, error) {
		return nil, fmt.Errorf("archive: %s/%q: %s", k.TenantID, k.PartitionKey, fmt.Sprintf(format, args...))
	}
	if err := chain.ValidateTenantID(k.TenantID); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err := chain.ValidatePartitionKey(k.PartitionKey); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err := emptyDir(p.Dir); err != nil {
		return nil, err
	}
	recs, err := p.Store.ChainArchives(ctx, k)
	if err != nil {
		return nil, err
	}
	start, tree := int64(0), (*audit.Tree)(nil)
	var firstPrev *chain.Hash
	if n := len(recs); n > 0 {
		last := recs[n-1]
		start, firstPrev = last.EndPos, &last.LastLink
		if tree, err = audit.ContinueTree(last.EndPos, last.TreeEdge); err != nil {
			return fail("the record of the archive ending at %d: %v", last.EndPos, err)
		}
	} else {
		tree, _ = audit.ContinueTree(0, nil)
	}
	end, err := rangeEnd(ctx, p, start)
	if err != nil {
		return nil, err
	}
	if end <= start {
		return fail("nothing to archive: the entries before chain_pos %d are archived already", start)
	}
	stored, err := p.Store.TreeSize(ctx, k)
	if err != nil {
		return nil, err
	}
	if stored < end {
		return fail("the checkpointer has hashed %d entries of the chain, not %d: archive after it has (the service does it within its checkpoint interval)", stored, end)
	}
	// The entries are read, checked and written a chunk at a time, so
	// memory stays bounded whatever the range's length.
	ef, err := os.OpenFile(filepath.Join(p.Dir, EntriesFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	defer ef.Close()
	sum := sha256.New()
	out := bufio.NewWriterSize(io.MultiWriter(ef, sum), 1<<20)
	var last offline.Entry
	prevLink, prevTHLC := firstPrev, ""
	for from := start; from < end; from += writeChunk {
		to := min(end, from+writeChunk)
		rows, err := p.Store.ExportEntries(ctx, driver.ExportParams{Key: k, FromPos: from, ToPos: to})
		if err != nil {
			return nil, err
		}
		b := &offline.Bundle{Format: offline.Format, Tenant: k.TenantID, Chains: []offline.Chain{{Partition: k.PartitionKey, Entries: make([]offline.Entry, len(rows))}}}
		entries := b.Chains[0].Entries
		for i := range rows {
			entries[i] = offline.EntryOf(&rows[i])
			if want := from + int64(i); rows[i].Entry.Pos != want {
				return fail("chain_pos %d is missing from the log", want)
			}
		}
		if int64(len(rows)) != to-from {
			return fail("the log holds %d entries in chain_pos %d to %d, not %d", len(rows), from, to-1, to-from)
		}
		if bad := offline.Check("", b)[0]; bad != nil {
			return fail("%v: the chain does not verify; an archive is written only of a chain that does", bad)
		}
		if err := joins(entries[0], prevLink); err != nil {
			return fail("%v", err)
		}
		if prevTHLC != "" && entries[0].THLC <= prevTHLC {
			return fail("chain_pos %d: t_hlc %s is not after %s", entries[0].Pos, entries[0].THLC, prevTHLC)
		}
		for i := range rows {
			tree.AddLink(rows[i].Entry.Link)
			line, err := json.Marshal(entries[i])
			if err != nil {
				return nil, err
			}
			out.Write(line)
			out.WriteByte('\n')
		}
		last = entries[len(entries)-1]
		l := rows[len(rows)-1].Entry.Link
		prevLink, prevTHLC = &l, last.THLC
	}
	if err := out.Flush(); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err := ef.Sync(); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	root := tree.Root()
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return p.Store.ReadHashes(ctx, k, idx) })
	if th, err := tlog.TreeHash(end, reader); err != nil {
		return nil, fmt.Errorf("archive: the stored tree at size %d: %w", end, err)
	} else if th != root {
		return fail("the entries hash to root %s at size %d, the stored tree to %s: run `ordo verify` first", b64(root), end, b64(th))
	}
	note, err := checkpointAt(ctx, p, end, root)
	if err != nil {
		return nil, err
	}

	m := &Manifest{Format: Format, Tenant: k.TenantID, Partition: k.PartitionKey, Origin: audit.Origin(k), StartPos: start, EndPos: end,
		LastLink: last.Link, LastTHLC: last.THLC, Root: b64(root), EntriesSHA256: hex.EncodeToString(sum.Sum(nil)), ArchivedAt: p.Now.UTC()}
	if firstPrev != nil {
		s := firstPrev.String()
		m.FirstPrevLink = &s
	}
	files := map[string][]byte{CheckpointFile: note}
	for _, t := range tlog.NewTiles(audit.TileHeight, start, end) {
		data, err := tlog.ReadTileData(t, reader)
		if err != nil {
			return nil, fmt.Errorf("archive: tile %s: %w", audit.TilePath(t), err)
		}
		files[audit.TilePath(t)] = data
		m.Tiles = append(m.Tiles, audit.TilePath(t))
	}
	man, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	files[ManifestFile] = append(man, '\n')
	if err := writeFiles(p.Dir, files); err != nil {
		return nil, err
	}
	lastLink, _ := chain.ParseHash(last.Link)
	rec := &driver.ChainArchive{Key: k, StartPos: start, EndPos: end, LastLink: lastLink, LastTHLC: last.THLC,
		TreeEdge: tree.Edge(), Root: root, Checkpoint: note, ArchivedAt: p.Now.UTC()}
	if firstPrev != nil {
		rec.FirstPrevLink = *firstPrev
	}
	if err := p.Store.RecordArchive(ctx, rec); err != nil {
		return nil, err
	}
	return m, nil
}

// rangeEnd is where the range from start ends: p.Before, or the first
// entry at or after p.BeforeTime, at most the chain's end.
func rangeEnd(ctx context.Context, p WriteParams, start int64) (int64, error) {
	if p.BeforeTime.IsZero() {
		if p.Before <= 0 {
			return 0, errors.New("archive: give the end of the range (a chain_pos or a time)")
		}
		n := int64(0)
		err := p.Store.Scan(ctx, driver.ScanParams{Key: p.Chain, From: p.Before - 1, To: p.Before}, func(*driver.LogEntry) error { n++; return nil })
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("archive: %s/%q has no entry at chain_pos %d: --before names a position inside the chain, or its end", p.Chain.TenantID, p.Chain.PartitionKey, p.Before-1)
		}
		return p.Before, nil
	}
	bound := hlc.Timestamp{Physical: p.BeforeTime.UnixMilli()}.String()
	end := start
	stop := errors.New("stop")
	err := p.Store.Scan(ctx, driver.ScanParams{Key: p.Chain, From: start, To: -1}, func(e *driver.LogEntry) error {
		if string(e.THLC) >= bound {
			return stop
		}
		end = e.Pos + 1
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return 0, err
	}
	return end, nil
}

// checkpointAt returns the signed checkpoint of the chain at size end:
// a stored one of that size and root, else one signed with p.Key and
// stored.
func checkpointAt(ctx context.Context, p WriteParams, end int64, root tlog.Hash) ([]byte, error) {
	cps, err := p.Store.Checkpoints(ctx, p.Chain, 0)
	if err != nil {
		return nil, err
	}
	for _, c := range cps {
		if c.Size == end && c.Root == root {
			return c.Note, nil
		}
	}
	if p.Key == nil {
		return nil, errors.New("archive: signing the checkpoint at the range's end needs the log's private key (--key)")
	}
	body := audit.CheckpointBody{Origin: audit.Origin(p.Chain), Size: end, Root: root}
	note, err := audit.SignCheckpoint(body, p.Key)
	if err != nil {
		return nil, err
	}
	err = p.Store.InsertCheckpoint(ctx, &driver.Checkpoint{Key: p.Chain, Size: end, Root: root, Note: note, KeyName: p.Key.KeyID(), CreatedAt: p.Now})
	return note, err
}

// joins checks that e, the first entry of a range, follows prev (the
// last link of the archive before, nil for a range from the genesis).
func joins(e offline.Entry, prev *chain.Hash) error {
	switch {
	case prev == nil && e.Pos != 0:
		return fmt.Errorf("the range starts at chain_pos %d, but no archive ends there", e.Pos)
	case prev == nil:
		return nil
	case e.PrevLink == nil:
		return fmt.Errorf("chain_pos %d has no prev_link, but follows an archived entry", e.Pos)
	case *e.PrevLink != prev.String():
		return fmt.Errorf("chain_pos %d: prev_link %s is not the link %s of the last archived entry", e.Pos, *e.PrevLink, prev)
	}
	return nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// emptyDir creates dir, or accepts it when it exists and is empty.
func emptyDir(dir string) error {
	if dir == "" {
		return errors.New("archive: an output directory is required (--out)")
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return fmt.Errorf("archive: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("archive: %s is not empty: an archive is written to a new directory", dir)
	}
	return nil
}

// writeFiles writes every file below dir and syncs each, and each
// directory, so the archive is on disk before the range is recorded (and
// perhaps dropped).
func writeFiles(dir string, files map[string][]byte) error {
	dirs := map[string]bool{dir: true}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		for d := filepath.Dir(path); len(d) >= len(dir); d = filepath.Dir(d) {
			dirs[d] = true
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("archive: %s: %w", path, err)
		}
	}
	for d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("archive: %s: %w", d, err)
		}
	}
	return nil
}
