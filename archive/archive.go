package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/offline"
)

// Format names the archive format; an archive of another is refused.
const Format = "ordo-archive/1"

// The files of an archive directory, beside the tiles (tile/...).
const (
	ManifestFile   = "manifest.json"
	EntriesFile    = "entries.jsonl"
	CheckpointFile = "checkpoint"
)

// ErrInvalid is wrapped by every failed check of an archive's contents.
var ErrInvalid = errors.New("archive: invalid")

// Manifest describes an archive (manifest.json). Hashes are lowercase
// hex, the root base64 as in the checkpoint.
type Manifest struct {
	Format        string    `json:"format"`
	Tenant        string    `json:"tenant"`
	Partition     string    `json:"partition"`
	Origin        string    `json:"origin"` // the checkpoint's origin line
	StartPos      int64     `json:"start_pos"`
	EndPos        int64     `json:"end_pos"`         // exclusive: the checkpoint's tree size
	FirstPrevLink *string   `json:"first_prev_link"` // null for a range starting at the genesis
	LastLink      string    `json:"last_link"`
	LastTHLC      string    `json:"last_t_hlc"`
	Root          string    `json:"root"`
	EntriesSHA256 string    `json:"entries_sha256"` // of entries.jsonl
	Tiles         []string  `json:"tiles"`          // the tile files, relative paths
	ArchivedAt    time.Time `json:"archived_at"`
}

// Key returns the archive's chain.
func (m *Manifest) Key() chain.Key { return chain.Key{TenantID: m.Tenant, PartitionKey: m.Partition} }

// Archive is an archive directory read back: its manifest and
// checkpoint; its entries are read from the file as they are needed.
type Archive struct {
	Dir        string
	Manifest   Manifest
	Checkpoint []byte
}

// Open reads the archive in dir. It checks the manifest and that the
// entries file is the one the manifest names (by its SHA-256, read
// through); the entries' own checks are VerifyChain's.
func Open(dir string) (*Archive, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, dir, fmt.Sprintf(format, args...))
	}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	a := &Archive{Dir: dir}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.Manifest); err != nil {
		return nil, bad("%s: %v", ManifestFile, err)
	}
	m := &a.Manifest
	if m.Format != Format {
		return nil, bad("%s: format %q, not %q", ManifestFile, m.Format, Format)
	}
	if err := chain.ValidateTenantID(m.Tenant); err != nil {
		return nil, bad("%s: %v", ManifestFile, err)
	}
	if err := chain.ValidatePartitionKey(m.Partition); err != nil {
		return nil, bad("%s: %v", ManifestFile, err)
	}
	if m.StartPos < 0 || m.EndPos <= m.StartPos {
		return nil, bad("%s: the range [%d, %d) is empty or negative", ManifestFile, m.StartPos, m.EndPos)
	}
	f, err := os.Open(filepath.Join(dir, EntriesFile))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != m.EntriesSHA256 {
		return nil, bad("%s hashes to %s, the manifest says %s: the file was changed", EntriesFile, got, m.EntriesSHA256)
	}
	if a.Checkpoint, err = os.ReadFile(filepath.Join(dir, CheckpointFile)); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return a, nil
}

// Entries calls fn with the archive's entries in file order, a chunk at
// a time (the slice is only valid during the call), checking again as it
// reads that the file is the one the manifest names and holds the
// range's number of entries.
func (a *Archive) Entries(fn func([]offline.Entry) error) error {
	m := &a.Manifest
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, a.Dir, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(filepath.Join(a.Dir, EntriesFile))
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	sum := sha256.New()
	sc := bufio.NewScanner(io.TeeReader(f, sum))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	chunk := make([]offline.Entry, 0, writeChunk)
	n := int64(0)
	for sc.Scan() {
		n++
		var e offline.Entry
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return bad("%s line %d: %v", EntriesFile, n, err)
		}
		if chunk = append(chunk, e); int64(len(chunk)) == writeChunk {
			if err := fn(chunk); err != nil {
				return err
			}
			chunk = chunk[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return bad("%s: %v", EntriesFile, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != m.EntriesSHA256 {
		return bad("%s hashes to %s, the manifest says %s: the file was changed", EntriesFile, got, m.EntriesSHA256)
	}
	if n != m.EndPos-m.StartPos {
		return bad("%s holds %d entries, the range [%d, %d) has %d", EntriesFile, n, m.StartPos, m.EndPos, m.EndPos-m.StartPos)
	}
	if len(chunk) > 0 {
		return fn(chunk)
	}
	return nil
}
