package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// Archive is an archive directory read back.
type Archive struct {
	Dir        string
	Manifest   Manifest
	Entries    []offline.Entry
	Checkpoint []byte
}

// Open reads the archive in dir. It checks the format and that the
// entries file is the one the manifest names; the entries' own checks are
// Verify's.
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
	data, err := os.ReadFile(filepath.Join(dir, EntriesFile))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != m.EntriesSHA256 {
		return nil, bad("%s hashes to %x, the manifest says %s: the file was changed", EntriesFile, sum, m.EntriesSHA256)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var e offline.Entry
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, bad("%s line %d: %v", EntriesFile, line, err)
		}
		a.Entries = append(a.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, bad("%s: %v", EntriesFile, err)
	}
	if int64(len(a.Entries)) != m.EndPos-m.StartPos {
		return nil, bad("%s holds %d entries, the range [%d, %d) has %d", EntriesFile, len(a.Entries), m.StartPos, m.EndPos, m.EndPos-m.StartPos)
	}
	if a.Checkpoint, err = os.ReadFile(filepath.Join(dir, CheckpointFile)); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return a, nil
}
