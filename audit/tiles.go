package audit

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// Tiles serves each chain's Merkle tree as a C2SP tlog-tiles log
// (https://c2sp.org/tlog-tiles): its latest signed checkpoint, its hash
// tiles and its entry bundles ("data tiles").
//
// Invariants:
//   - Everything served is read from the database: checkpoints from
//     chain_checkpoints as the checkpointer signed them, hash tiles from the
//     tree hashes the checkpointer stored (chain_tree_hashes; level-0 tiles
//     are the stored leaf hashes), entry bundles from scheduler_log. Tiles
//     are a view of what the database holds, never a second copy.
//   - Only the tree of the chain's latest checkpoint is served: a tile is
//     served exactly when it is a tile (full, or partial of any width) of a
//     tree of at most that size. So every tile a client needs to check a
//     checkpoint it was served, or an older one, exists, and nothing beyond
//     what ordo signed is.
//   - Leaf i is the entry at chain_pos i; its entry in an entry bundle is its
//     32-byte link (the leaf data of LeafHash), so that the RFC 6962 hash of
//     each bundle entry is the matching hash of the level-0 tile, and
//     existing checkpoints verify against the tiles.
//   - A full tile never changes (a tree only grows), so a full tile once
//     read is cached in memory and served from there; partial tiles and
//     checkpoints are always read afresh.
type Tiles struct {
	store driver.AuditStore
	cache *tileCache

	mu sync.Mutex
	// signed is, per chain, the largest tree size a checkpoint was seen to
	// sign: a tile of that tree is a tile of every later one (a tree only
	// grows), so serving it needs no look at the checkpoints.
	signed map[chain.Key]int64
}

// HashRangeReader is what a store may offer besides driver.AuditStore:
// the stored tree hashes of chain k at every index from lo to hi, in
// index order, in one ordered read. A level-0 tile's 256 leaf hashes lie,
// among the nodes above them, in 511 consecutive stored-hash indexes: one
// range read instead of 256 lookups. Both of ordo's backends offer it.
type HashRangeReader interface {
	ReadHashRange(ctx context.Context, k chain.Key, lo, hi int64) ([]tlog.Hash, error)
}

// TileHeight is the tile height of C2SP tlog-tiles: a tile is a subtree
// of height 8, 256 hashes (or entries) wide when full.
const TileHeight = 8

// tileWidth is the width of a full tile.
const tileWidth = 1 << TileHeight

// maxTileLevel is the highest level C2SP tlog-tiles allows in a path.
const maxTileLevel = 63

// Errors of Tiles. ErrNoTile and ErrNoCheckpoint are what a client asked
// for not existing (HTTP 404); ErrBadTilePath is a malformed request (400).
var (
	ErrBadTilePath  = errors.New("audit: malformed tile path")
	ErrNoTile       = errors.New("audit: no such tile")
	ErrNoCheckpoint = errors.New("audit: no signed checkpoint")
)

// NewTiles serves the trees of store, caching up to cacheTiles full tiles
// (hash tiles and entry bundles; about 8.5 KiB each). cacheTiles <= 0
// caches none.
func NewTiles(store driver.AuditStore, cacheTiles int) *Tiles {
	return &Tiles{store: store, cache: newTileCache(cacheTiles), signed: map[chain.Key]int64{}}
}

// Checkpoint returns chain k's latest signed checkpoint, as the
// checkpointer stored it, and the tree size its note signs (not the
// column beside it, which nothing signs). A note changed in the database
// so that it no longer reads is returned as it is, with the column's
// size: whoever checks its signature refuses it, as it must.
func (t *Tiles) Checkpoint(ctx context.Context, k chain.Key) (driver.Checkpoint, int64, error) {
	cps, err := t.store.Checkpoints(ctx, k, 1)
	if err != nil {
		return driver.Checkpoint{}, 0, err
	}
	if len(cps) == 0 {
		return driver.Checkpoint{}, 0, fmt.Errorf("%w: chain %s has no signed checkpoint (an unknown chain, or one the checkpointer has not signed yet)", ErrNoCheckpoint, Origin(k))
	}
	size := cps[0].Size
	if b, _, err := OpenCheckpoint(cps[0].Note, nil); err == nil {
		size = b.Size
	}
	return cps[0], size, nil
}

// ParseTilePath reads the part of a tlog-tiles URL after "tile/": level is
// "entries" for an entry bundle, else the decimal level 0..63; index is
// <N>[.p/<W>] (N in zero-padded 3-digit path elements, all but the last
// prefixed with "x"; W 1..255). Only the one canonical spelling of each
// tile is accepted.
func ParseTilePath(level, index string) (tlog.Tile, error) {
	bad := func(why string) (tlog.Tile, error) {
		return tlog.Tile{}, fmt.Errorf("%w: tile/%s/%s: %s", ErrBadTilePath, level, index, why)
	}
	sumdbLevel := "data" // what golang.org/x/mod/sumdb/tlog calls an entry bundle
	if level != "entries" {
		l, err := strconv.Atoi(level)
		if err != nil || l < 0 || l > maxTileLevel || strconv.Itoa(l) != level {
			return bad(fmt.Sprintf("the level must be \"entries\" or a decimal number 0 to %d without leading zeros", maxTileLevel))
		}
		sumdbLevel = level
	}
	// tlog's paths are tile/<H>/<L>/<N>[.p/<W>] with L "data" for entry
	// bundles: the same <N> and <W>, checked by tlog, which accepts only
	// the path it would write itself.
	tile, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/%s/%s", TileHeight, sumdbLevel, index))
	if err != nil {
		return bad("want <N>[.p/<W>]: N in 3-digit path elements, all but the last starting with x (1234067 is x001/x234/067), W 1 to 255")
	}
	return tile, nil
}

// TilePath is the path of tile below a log's prefix, as C2SP tlog-tiles
// writes it: tile/<L>/<N>[.p/<W>], or tile/entries/<N>[.p/<W>].
func TilePath(tile tlog.Tile) string {
	p := tile.Path() // tile/8/<L or data>/<N>[.p/<W>]
	prefix := fmt.Sprintf("tile/%d/", TileHeight)
	if tile.L == -1 {
		return "tile/entries/" + p[len(prefix+"data/"):]
	}
	return "tile/" + p[len(prefix):]
}

// Tile returns the bytes of tile (an entry bundle when tile.L is -1) of
// chain k: 32-byte hashes, or entries each a big-endian uint16 length and
// the entry's link. ErrNoTile when it is not a tile of the chain's latest
// checkpoint's tree, ErrNoCheckpoint when there is none.
func (t *Tiles) Tile(ctx context.Context, k chain.Key, tile tlog.Tile) ([]byte, error) {
	if tile.H != TileHeight || tile.W < 1 || tile.W > tileWidth || tile.L < -1 || tile.L > maxTileLevel || tile.N < 0 {
		return nil, fmt.Errorf("%w: %+v is not a tlog-tiles tile", ErrBadTilePath, tile)
	}
	full := tile.W == tileWidth
	key := tileKey{chain: k, level: tile.L, n: tile.N}
	if full {
		if b, ok := t.cache.get(key); ok {
			return b, nil
		}
	}
	if err := t.checkSigned(ctx, k, tile); err != nil {
		return nil, err
	}
	var b []byte
	var err error
	rr, ranged := t.store.(HashRangeReader)
	switch {
	case tile.L == -1:
		b, err = t.entryBundle(ctx, k, tile)
		if err == nil && len(b) < tile.W*(2+linkSize) {
			err = t.checkArchived(ctx, k, tile)
		}
	case tile.L == 0 && ranged:
		b, err = leafTile(ctx, rr, k, tile)
	default:
		b, err = tlog.ReadTileData(tile, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
			return t.store.ReadHashes(ctx, k, indexes)
		}))
	}
	if err != nil {
		return nil, fmt.Errorf("audit: reading %s of %s: %w", TilePath(tile), Origin(k), err)
	}
	if full {
		t.cache.put(key, b)
	}
	return b, nil
}

// checkSigned returns nil when tile is a tile of the tree of chain k's
// latest checkpoint (or of a smaller signed tree, which it then is too),
// ErrNoTile or ErrNoCheckpoint otherwise.
func (t *Tiles) checkSigned(ctx context.Context, k chain.Key, tile tlog.Tile) error {
	t.mu.Lock()
	size, seen := t.signed[k]
	t.mu.Unlock()
	if seen && tileWithin(tile, size) {
		return nil
	}
	_, size, err := t.Checkpoint(ctx, k)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.signed[k] = max(t.signed[k], size)
	t.mu.Unlock()
	if !tileWithin(tile, size) {
		return fmt.Errorf("%w: %s is not part of the tree of size %d that the latest checkpoint of %s signs",
			ErrNoTile, TilePath(tile), size, Origin(k))
	}
	return nil
}

// leafTile reads a level-0 tile, the stored leaf hashes, in one range.
func leafTile(ctx context.Context, rr HashRangeReader, k chain.Key, tile tlog.Tile) ([]byte, error) {
	first := tile.N << TileHeight
	lo := tlog.StoredHashIndex(0, first)
	hashes, err := rr.ReadHashRange(ctx, k, lo, tlog.StoredHashIndex(0, first+int64(tile.W)-1))
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, tile.W*tlog.HashSize)
	for i := range int64(tile.W) {
		h := hashes[tlog.StoredHashIndex(0, first+i)-lo]
		b = append(b, h[:]...)
	}
	return b, nil
}

// tileWithin reports whether tile is a tile of the tree of size n: its
// hashes (or entries) all exist in that tree.
func tileWithin(tile tlog.Tile, n int64) bool {
	level := max(tile.L, 0)
	if TileHeight*level >= 63 {
		return false // no tree has a complete node that high
	}
	nodes := n >> (TileHeight * level) // complete nodes at the tile's lowest height
	if tile.N > nodes>>TileHeight {
		return false // (and tile.N<<TileHeight below cannot overflow)
	}
	return tile.N<<TileHeight+int64(tile.W) <= nodes
}

// entryBundle reads the links of the entries of tile, in order. An entry
// that is not where it should be (a gap in chain_pos, a link of the wrong
// length) is served as the database holds it: the client's check against
// the signed tree is what finds it out. Such a bundle is not cached.
func (t *Tiles) entryBundle(ctx context.Context, k chain.Key, tile tlog.Tile) ([]byte, error) {
	from := tile.N << TileHeight
	b := make([]byte, 0, tile.W*(2+linkSize))
	add := func(pos int64, link []byte) error {
		if len(link) > 0xFFFF {
			return fmt.Errorf("chain_pos %d: a link of %d bytes", pos, len(link))
		}
		b = append(b, byte(len(link)>>8), byte(len(link)))
		b = append(b, link...)
		return nil
	}
	if lr, ok := t.store.(LinkReader); ok {
		return b, lr.ReadLinks(ctx, k, from, from+int64(tile.W), add)
	}
	err := t.store.Scan(ctx, driver.ScanParams{Key: k, From: from, To: from + int64(tile.W)}, func(e *driver.LogEntry) error {
		return add(e.Pos, e.Link)
	})
	return b, err
}

// checkArchived returns ErrNoTile when entries of the bundle tile were
// dropped from the database after archiving: their links are in the
// archive files, not here (the hash tiles still are). Any other short
// bundle is served as it is, for the client to refuse.
func (t *Tiles) checkArchived(ctx context.Context, k chain.Key, tile tlog.Tile) error {
	recs, err := t.store.ChainArchives(ctx, k)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if !r.DroppedAt.IsZero() && tile.N<<TileHeight < r.EndPos {
			return fmt.Errorf("%w: the entries of %s were archived and dropped from the database (archive of chain_pos %d to %d)",
				ErrNoTile, TilePath(tile), r.StartPos, r.EndPos-1)
		}
	}
	return nil
}

// LinkReader is what a store may offer besides driver.AuditStore: the
// chain_pos and link of every entry of chain k whose chain_pos is in
// [from, to), in chain_pos order, link valid during the call only. An
// entry bundle needs the links alone; Scan reads whole entries. Both of
// ordo's backends offer it.
type LinkReader interface {
	ReadLinks(ctx context.Context, k chain.Key, from, to int64, fn func(pos int64, link []byte) error) error
}

// tileKey names a full tile of one chain (level -1: an entry bundle).
type tileKey struct {
	chain chain.Key
	level int
	n     int64
}

// tileCache is a least-recently-used cache of full tiles, safe for
// concurrent use.
type tileCache struct {
	mu    sync.Mutex
	limit int
	order *list.List // of *tileEntry, most recently used first
	byKey map[tileKey]*list.Element
}

type tileEntry struct {
	key  tileKey
	data []byte
}

func newTileCache(limit int) *tileCache {
	return &tileCache{limit: limit, order: list.New(), byKey: map[tileKey]*list.Element{}}
}

func (c *tileCache) get(k tileKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*tileEntry).data, true
}

func (c *tileCache) put(k tileKey, data []byte) {
	if c.limit <= 0 || !fullTileSize(k.level, data) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[k] = c.order.PushFront(&tileEntry{key: k, data: data})
	for c.order.Len() > c.limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*tileEntry).key)
	}
}

// fullTileSize reports whether data has the size of a full, well-formed
// tile: 256 hashes, or 256 entries of a 32-byte link each.
func fullTileSize(level int, data []byte) bool {
	if level == -1 {
		return len(data) == tileWidth*(2+linkSize)
	}
	return len(data) == tileWidth*tlog.HashSize
}

// linkSize is the size of a well-formed link, the leaf data of an entry.
const linkSize = len(chain.Hash{})
