package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/metrics"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

// Only the one spelling C2SP tlog-tiles gives a tile is read, and
// TilePath writes it back.
func TestParseTilePath(t *testing.T) {
	for _, c := range []struct {
		level, index string
		want         tlog.Tile
	}{
		{"0", "000", tlog.Tile{H: 8, L: 0, N: 0, W: 256}},
		{"1", "x001/x234/067", tlog.Tile{H: 8, L: 1, N: 1234067, W: 256}},
		{"63", "000.p/1", tlog.Tile{H: 8, L: 63, N: 0, W: 1}},
		{"entries", "002.p/255", tlog.Tile{H: 8, L: -1, N: 2, W: 255}},
		{"entries", "x009/x223/x372/x036/x854/x775/807", tlog.Tile{H: 8, L: -1, N: 1<<63 - 1, W: 256}},
	} {
		got, err := audit.ParseTilePath(c.level, c.index)
		if err != nil || got != c.want {
			t.Errorf("%s/%s: %+v, %v; want %+v", c.level, c.index, got, err, c.want)
			continue
		}
		if p, want := audit.TilePath(got), "tile/"+c.level+"/"+c.index; p != want {
			t.Errorf("TilePath(%+v) = %s, want %s", got, p, want)
		}
	}
	for _, bad := range [][2]string{
		{"0", ""}, {"0", "0"}, {"0", "00"}, {"0", "1000"}, {"0", "x000/000"}, {"0", "001/002"}, {"0", "x1/000"},
		{"0", "000.p/0"}, {"0", "000.p/256"}, {"0", "000.p/07"}, {"0", "000.p/"}, {"0", "000.p"}, {"0", "000/"},
		{"0", "-01"}, {"0", "+01"}, {"0", "x999/x999/x999/x999/x999/x999/x999/999"}, {"00", "000"}, {"64", "000"},
		{"-1", "000"}, {"data", "000"}, {"", "000"}, {"1e1", "000"}, {"entries", "000.p/256"},
	} {
		if tile, err := audit.ParseTilePath(bad[0], bad[1]); !errors.Is(err, audit.ErrBadTilePath) {
			t.Errorf("%s/%s: %+v, %v; want ErrBadTilePath", bad[0], bad[1], tile, err)
		}
	}
}

// plainStore hides the optional readers (audit.HashRangeReader,
// audit.LinkReader) of the store it wraps.
type plainStore struct{ driver.AuditStore }

// On both backends, the tiles are the same whether read with the
// backends' range and link readers or with AuditStore alone, they give
// the tree the checkpoint signs, and a tile is served exactly when it is
// one of that tree.
func TestTilesAgree(t *testing.T) {
	ctx := context.Background()
	priv, _, err := audit.GenerateKey(rand.Reader, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	testdb.EachBackend(t, func(t *testing.T, url string) {
		db := testdb.OpenMigrated(t, store.Open, url)
		as := db.AuditStore()
		clock, wall := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: "node-a", Store: db.HLCState()})
		now := func() time.Time { return time.UnixMilli(wall.UnixMilli()) }
		m, _ := metrics.New(nil)
		q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Now: now, Metrics: m, Options: queue.Options{EnableHlcOrdering: true}})
		if err != nil {
			t.Fatal(err)
		}
		k := chain.Key{TenantID: "acme", PartitionKey: "p"}
		tiles := audit.NewTiles(as, 16)
		if _, err := tiles.Tile(ctx, k, tlog.Tile{H: 8, L: 0, N: 0, W: 1}); !errors.Is(err, audit.ErrNoCheckpoint) {
			t.Fatalf("a tile of a chain without entries: %v", err)
		}
		const n = 600
		var jobs []queue.Job
		for i := range n {
			jobs = append(jobs, queue.Job{TenantID: k.TenantID, PartitionKey: k.PartitionKey, Kind: "k", Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))})
		}
		if _, err := q.EnqueueMany(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		if _, err := tiles.Tile(ctx, k, tlog.Tile{H: 8, L: 0, N: 0, W: 1}); !errors.Is(err, audit.ErrNoCheckpoint) {
			t.Fatalf("a tile of a chain not yet signed: %v", err)
		}
		if _, err := (&audit.Checkpointer{Store: as, Key: key, Holder: "node-a", Now: now}).RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		_, size, err := tiles.Checkpoint(ctx, k)
		if err != nil || size != n {
			t.Fatalf("checkpoint: size %d, %v", size, err)
		}
		plain := audit.NewTiles(plainStore{as}, 0)
		read := func(tl *audit.Tiles, tile tlog.Tile) []byte {
			t.Helper()
			b, err := tl.Tile(ctx, k, tile)
			if err != nil {
				t.Fatalf("%s: %v", audit.TilePath(tile), err)
			}
			return b
		}
		// Every tile of the trees up to 260 (partial ones of every width)
		// and of a few larger ones, through both readers.
		var all []tlog.Tile
		for size := int64(1); size <= 260; size++ {
			all = append(all, tlog.NewTiles(8, size-1, size)...)
		}
		for _, size := range []int64{511, 512, 513, n} {
			all = append(all, tlog.NewTiles(8, 0, size)...)
		}
		for _, tile := range all {
			if a, b := read(tiles, tile), read(plain, tile); !bytes.Equal(a, b) {
				t.Fatalf("%s: the readers disagree", audit.TilePath(tile))
			}
			if tile.L == 0 {
				tile.L = -1
				if a, b := read(tiles, tile), read(plain, tile); !bytes.Equal(a, b) || len(a) != tile.W*34 {
					t.Fatalf("%s: the readers disagree, or %d bytes", audit.TilePath(tile), len(a))
				}
			}
		}
		// The tiles prove the checkpoint's tree (tlog checks every tile it
		// reads against the signed root) and every entry into it.
		cps, _ := as.Checkpoints(ctx, k, 1)
		body, _, err := audit.OpenCheckpoint(cps[0].Note, key.Public())
		if err != nil {
			t.Fatal(err)
		}
		r := tlog.TileHashReader(tlog.Tree{N: n, Hash: body.Root}, tileReader{tiles, k})
		if root, err := tlog.TreeHash(n, r); err != nil || root != body.Root {
			t.Fatalf("the tiles' root %x is not the signed one: %v", root, err)
		}
		for _, i := range []int64{0, 255, 256, 599} {
			p, err := tlog.ProveRecord(n, i, r)
			if err != nil {
				t.Fatal(err)
			}
			bundle := read(tiles, tlog.Tile{H: 8, L: -1, N: i / 256, W: int(min(256, n-i/256*256))})
			link := bundle[(i%256)*34+2 : (i%256)*34+34]
			if err := tlog.CheckRecord(p, n, body.Root, i, tlog.RecordHash(link)); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
		for _, tile := range []tlog.Tile{
			{H: 8, L: 0, N: 2, W: 256}, {H: 8, L: 0, N: 2, W: 89}, {H: 8, L: -1, N: 3, W: 1}, {H: 8, L: 1, N: 0, W: 3},
			{H: 8, L: 2, N: 0, W: 1}, {H: 8, L: 63, N: 0, W: 1}, {H: 8, L: 0, N: 1<<63 - 1, W: 256}, {H: 8, L: 0, N: 1 << 56, W: 1},
		} {
			if _, err := tiles.Tile(ctx, k, tile); !errors.Is(err, audit.ErrNoTile) {
				t.Errorf("%+v: %v, want ErrNoTile", tile, err)
			}
		}
		for _, tile := range []tlog.Tile{{H: 7, L: 0, N: 0, W: 1}, {H: 8, L: 0, N: 0, W: 0}, {H: 8, L: 0, N: -1, W: 1}, {H: 8, L: 64, N: 0, W: 1}} {
			if _, err := tiles.Tile(ctx, k, tile); !errors.Is(err, audit.ErrBadTilePath) {
				t.Errorf("%+v: %v, want ErrBadTilePath", tile, err)
			}
		}
	})
}

// tileReader is a tlog.TileReader over audit.Tiles.
type tileReader struct {
	tiles *audit.Tiles
	k     chain.Key
}

func (r tileReader) Height() int { return audit.TileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	var out [][]byte
	for _, tile := range tiles {
		b, err := r.tiles.Tile(context.Background(), r.k, tile)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}
