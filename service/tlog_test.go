package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/service"
)

// bearer adds a bearer token to every request, as an auditor's HTTP
// client configured with the token would.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// tlogClient is an independent tlog-tiles client (filippo.io/torchwood)
// of the log at base, sending token ("" for none).
type tlogClient struct {
	t       *testing.T
	fetcher *torchwood.TileFetcher
	client  *torchwood.Client
	key     *audit.PublicKey
}

func newTlogClient(t *testing.T, base, token string, key *audit.PublicKey) *tlogClient {
	t.Helper()
	var rt http.RoundTripper = http.DefaultTransport
	if token != "" {
		rt = bearer{token: token, next: rt}
	}
	f, err := torchwood.NewTileFetcher(base, torchwood.WithHTTPClient(&http.Client{Transport: rt, Timeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := torchwood.NewClient(f)
	if err != nil {
		t.Fatal(err)
	}
	return &tlogClient{t: t, fetcher: f, client: c, key: key}
}

// checkpoint fetches the log's checkpoint and verifies it with ordo's
// public key, as a tlog client does before trusting any tile.
func (c *tlogClient) checkpoint(origin string) torchwood.Checkpoint {
	c.t.Helper()
	b, err := c.fetcher.ReadEndpoint(context.Background(), "checkpoint")
	if err != nil {
		c.t.Fatal(err)
	}
	n, err := note.Open(b, note.VerifierList(c.key.NoteVerifier()))
	if err != nil {
		c.t.Fatalf("the checkpoint does not verify with ordo's public key: %v\n%s", err, b)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		c.t.Fatal(err)
	}
	if cp.Origin != origin {
		c.t.Fatalf("checkpoint origin %q, want %q", cp.Origin, origin)
	}
	return cp
}

// links returns the links of chain k, by chain_pos, read straight from
// the database.
func links(e *env, k chain.Key) [][]byte {
	e.T.Helper()
	rows, err := e.Raw.Query("SELECT chain_pos, link FROM "+e.Prefix+"scheduler_log WHERE tenant_id = "+e.Ph(1)+
		" AND partition_key = "+e.Ph(2)+" ORDER BY chain_pos", k.TenantID, k.PartitionKey)
	if err != nil {
		e.T.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var pos int64
		var link []byte
		if err := rows.Scan(&pos, &link); err != nil {
			e.T.Fatal(err)
		}
		if pos != int64(len(out)) {
			e.T.Fatalf("chain_pos %d at row %d", pos, len(out))
		}
		out = append(out, link)
	}
	if err := rows.Err(); err != nil {
		e.T.Fatal(err)
	}
	return out
}

// enqueueMany enqueues n jobs into one chain, in batches.
func enqueueMany(e *env, tenant, token, partition string, n int) {
	e.T.Helper()
	for lo := 0; lo < n; lo += 500 {
		var jobs []map[string]any
		for i := lo; i < min(n, lo+500); i++ {
			jobs = append(jobs, map[string]any{"kind": "audit.me", "partition": partition, "payload": map[string]any{"n": i}})
		}
		e.call("POST", "/v1/tenants/"+tenant+"/jobs/batch", token, map[string]any{"jobs": jobs}).must(e.T, http.StatusCreated)
	}
}

// tlogEnv is a service whose chains have been checkpointed: acme's default
// chain of 600 entries (two full tiles and a partial one of 88), acme's
// partition "eu/west 1" of 20, and public tenant pub's default chain of 10.
type tlogEnv struct {
	*env
	pub    *audit.PublicKey
	acme   chain.Key
	eu     chain.Key
	public chain.Key
}

func newTlogEnv(t *testing.T, dbURL string) *tlogEnv {
	t.Helper()
	priv, _, err := audit.GenerateKey(rand.Reader, "tiles-node")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(keyFile, []byte(priv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := audit.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, dbURL, func(c *config.Config) {
		c.Ordo.Audit.SigningKeyFile = keyFile // the checkpoints are signed by the test, below
		c.Ordo.Audit.CheckpointInterval = 0
		c.Ordo.Audit.PublicTiles = []string{"pub"}
	}, service.Options{})
	te := &tlogEnv{env: e, pub: signer.Public(), acme: chain.Key{TenantID: "acme"},
		eu: chain.Key{TenantID: "acme", PartitionKey: "eu/west 1"}, public: chain.Key{TenantID: "pub"}}
	enqueueMany(e, "acme", acmeToken, "", 600)
	enqueueMany(e, "acme", acmeToken, te.eu.PartitionKey, 20)
	enqueueMany(e, "pub", adminToken, "", 10)
	cp := &audit.Checkpointer{Store: e.Svc.Queue().Backend().AuditStore(), Key: signer, Holder: "test-node",
		Now: func() time.Time { return time.UnixMilli(e.Wall.UnixMilli()) }}
	if res, err := cp.RunOnce(context.Background()); err != nil || len(res.Checkpoints) != 3 {
		t.Fatalf("checkpointing: %+v, %v", res, err)
	}
	return te
}

// base is the tlog-tiles prefix of chain k on the service.
func (te *tlogEnv) base(k chain.Key) string {
	if k.PartitionKey == "" {
		return te.URL + "/v1/tenants/" + k.TenantID + "/tlog/"
	}
	return te.URL + "/v1/tenants/" + k.TenantID + "/partitions/" + url.PathEscape(k.PartitionKey) + "/tlog/"
}

// TestTlogTiles: an independent tlog client (filippo.io/torchwood, its
// Client and HTTP tile fetcher) reads each chain from a running service as
// a C2SP tlog-tiles log: it verifies the served checkpoint with ordo's
// public key, proves chosen entries into it and reads every entry, which
// are the chain's links; a tile changed in the database, or on its way,
// is refused.
func TestTlogTiles(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		te := newTlogEnv(t, dbURL)
		ctx := context.Background()
		for _, c := range []struct {
			k      chain.Key
			token  string
			chosen []int64
		}{
			{te.acme, acmeToken, []int64{0, 1, 255, 256, 511, 512, 599}},
			{te.eu, acmeToken, []int64{0, 7, 19}},
			{te.public, "", []int64{0, 9}}, // Ordo:Audit:PublicTiles: no token
		} {
			want := links(te.env, c.k)
			tc := newTlogClient(t, te.base(c.k), c.token, te.pub)
			cp := tc.checkpoint(audit.Origin(c.k))
			if cp.N != int64(len(want)) {
				t.Fatalf("%s: checkpoint of size %d, the chain has %d entries", cp.Origin, cp.N, len(want))
			}
			for _, i := range c.chosen {
				entry, proof, err := tc.client.Entry(ctx, cp.Tree, i)
				if err != nil {
					t.Fatalf("%s: entry %d: %v", cp.Origin, i, err)
				}
				if !bytes.Equal(entry, want[i]) {
					t.Fatalf("%s: entry %d is %x, the link at chain_pos %d is %x", cp.Origin, i, entry, i, want[i])
				}
				// The proof the tiles give checks with tlog, on the leaf
				// hash of ordo's tree (audit.LeafHash of the link).
				link, _ := chain.HashFromBytes(want[i])
				if err := tlog.CheckRecord(proof, cp.N, cp.Hash, i, audit.LeafHash(link)); err != nil {
					t.Fatalf("%s: entry %d: %v", cp.Origin, i, err)
				}
			}
			// Every entry, in order. Entries may stop before a partial
			// bundle; resumed with the same tree, it reads on.
			n := 0
			for progress := true; progress; {
				progress = false
				for i, entry := range tc.client.Entries(ctx, cp.Tree, int64(n)) {
					if i != int64(n) || !bytes.Equal(entry, want[i]) {
						t.Fatalf("%s: entry %d (the %dth read) is %x, want %x", cp.Origin, i, n, entry, want[n])
					}
					n, progress = n+1, true
				}
				if err := tc.client.Err(); err != nil {
					t.Fatalf("%s: reading the entries: %v", cp.Origin, err)
				}
			}
			if n != len(want) {
				t.Fatalf("%s: read %d of %d entries", cp.Origin, n, len(want))
			}
		}

		// A tile changed on its way (a full level-0 tile: one hash) is
		// refused by a client that has not seen it.
		flip := httptest.NewServer(&httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				u, _ := url.Parse(te.URL)
				r.SetURL(u)
				r.Out.Header.Set("Authorization", "Bearer "+acmeToken)
			},
			ModifyResponse: func(resp *http.Response) error {
				if !strings.HasSuffix(resp.Request.URL.Path, "/tlog/tile/0/000") {
					return nil
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				b[100] ^= 1
				resp.Body = io.NopCloser(bytes.NewReader(b))
				return nil
			},
		})
		t.Cleanup(flip.Close)
		tc := newTlogClient(t, flip.URL+"/v1/tenants/acme/tlog/", "", te.pub)
		cp := tc.checkpoint(audit.Origin(te.acme))
		if _, _, err := tc.client.Entry(ctx, cp.Tree, 3); err == nil {
			t.Fatal("a level-0 tile changed on its way was accepted")
		}

		// In the database: a link of the partial entry bundle (which no
		// cache holds), and a stored leaf hash of the partial level-0
		// tile. The service serves what the database holds; the client
		// refuses both.
		tc = newTlogClient(t, te.base(te.acme), acmeToken, te.pub)
		cp = tc.checkpoint(audit.Origin(te.acme))
		forged := bytes.Repeat([]byte{0xee}, 32)
		if _, err := te.Raw.Exec("UPDATE "+te.Prefix+"scheduler_log SET link = "+te.Ph(1)+" WHERE tenant_id = 'acme' AND partition_key = '' AND chain_pos = 590", forged); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tc.client.Entry(ctx, cp.Tree, 590); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("a changed link in an entry bundle: %v, want it refused", err)
		}
		// Entries in other bundles still verify.
		if _, _, err := tc.client.Entry(ctx, cp.Tree, 300); err != nil {
			t.Fatal(err)
		}
		if _, err := te.Raw.Exec("UPDATE "+te.Prefix+"chain_tree_hashes SET hash = "+te.Ph(1)+" WHERE tenant_id = 'acme' AND partition_key = '' AND hash_index = "+te.Ph(2),
			forged, tlog.StoredHashIndex(0, 595)); err != nil {
			t.Fatal(err)
		}
		// The partial tile is on the tree's right edge, which every proof
		// into this tree goes through: no entry verifies now.
		for _, i := range []int64{580, 300} {
			if _, _, err := tc.client.Entry(ctx, cp.Tree, i); err == nil {
				t.Fatalf("entry %d: a changed leaf hash in a level-0 tile was accepted", i)
			}
		}

		// A checkpoint changed in the database (its size) is served as it
		// is, and refused by its signature.
		var note600 string
		if err := te.Raw.QueryRow("SELECT note FROM " + te.Prefix + "chain_checkpoints WHERE tenant_id = 'acme' AND partition_key = '' AND tree_size = 600").Scan(&note600); err != nil {
			t.Fatal(err)
		}
		if _, err := te.Raw.Exec("UPDATE "+te.Prefix+"chain_checkpoints SET note = "+te.Ph(1)+" WHERE tenant_id = 'acme' AND partition_key = '' AND tree_size = 600",
			strings.Replace(note600, "\n600\n", "\n599\n", 1)); err != nil {
			t.Fatal(err)
		}
		b, err := tc.fetcher.ReadEndpoint(ctx, "checkpoint")
		if err != nil || !strings.Contains(string(b), "\n599\n") {
			t.Fatalf("the changed checkpoint: %q, %v", b, err)
		}
		if _, err := note.Open(b, note.VerifierList(te.pub.NoteVerifier())); err == nil {
			t.Fatal("a changed checkpoint verifies")
		}
	})
}

// TestTlogTileRequests: every tile request gets the tile with the headers
// C2SP tlog-tiles asks for, or a 4xx naming what is wrong with it;
// tokens and tenants work as on every route.
func TestTlogTileRequests(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		te := newTlogEnv(t, dbURL)
		const acme = "/v1/tenants/acme/tlog/"
		get := func(path, token string) (*http.Response, []byte) {
			t.Helper()
			req, err := http.NewRequest("GET", te.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, b
		}
		for _, c := range []struct {
			path, token  string
			status       int
			size         int // of a tile
			cacheControl string
			says         string // in an error's message
		}{
			{acme + "checkpoint", acmeToken, 200, -1, "private, max-age=5", ""},
			{acme + "tile/0/000", acmeToken, 200, 8192, "private, max-age=31536000, immutable", ""},
			{acme + "tile/0/001", acmeToken, 200, 8192, "private, max-age=31536000, immutable", ""},
			{acme + "tile/0/002.p/88", acmeToken, 200, 88 * 32, "private, max-age=60", ""},
			{acme + "tile/0/002.p/5", acmeToken, 200, 5 * 32, "private, max-age=60", ""}, // an older checkpoint's
			{acme + "tile/1/000.p/2", acmeToken, 200, 2 * 32, "private, max-age=60", ""},
			{acme + "tile/entries/000", acmeToken, 200, 256 * 34, "private, max-age=31536000, immutable", ""},
			{acme + "tile/entries/002.p/88", acmeToken, 200, 88 * 34, "private, max-age=60", ""},
			{acme + "tile/entries/000", adminToken, 200, 256 * 34, "private, max-age=31536000, immutable", ""},
			{"/v1/tenants/acme/partitions/eu%2Fwest%201/tlog/tile/0/000.p/20", acmeToken, 200, 20 * 32, "private, max-age=60", ""},
			{"/v1/tenants/pub/tlog/tile/entries/000.p/10", "", 200, 10 * 34, "public, max-age=60", ""},
			{"/v1/tenants/pub/tlog/checkpoint", "", 200, -1, "public, max-age=5", ""},

			// Beyond the signed tree, or no such chain: 404.
			{acme + "tile/0/002", acmeToken, 404, 0, "", "not part of the tree of size 600"},
			{acme + "tile/0/002.p/89", acmeToken, 404, 0, "", "not part of the tree of size 600"},
			{acme + "tile/0/003.p/1", acmeToken, 404, 0, "", "not part of the tree"},
			{acme + "tile/entries/x001/000", acmeToken, 404, 0, "", "not part of the tree"},
			{acme + "tile/1/000", acmeToken, 404, 0, "", "not part of the tree"},
			{acme + "tile/2/000.p/1", acmeToken, 404, 0, "", "not part of the tree"},
			{acme + "tile/63/000.p/1", acmeToken, 404, 0, "", "not part of the tree"},
			{acme + "tile/0/x009/x223/x372/x036/x854/x775/806.p/1", acmeToken, 404, 0, "", "not part of the tree"}, // N = 2^63-2
			{"/v1/tenants/acme/partitions/nowhere/tlog/checkpoint", acmeToken, 404, 0, "", "no signed checkpoint"},
			{"/v1/tenants/acme/partitions/nowhere/tlog/tile/0/000.p/1", acmeToken, 404, 0, "", "no signed checkpoint"},
			{"/v1/tenants/nobody/tlog/checkpoint", adminToken, 404, 0, "", "no signed checkpoint"},

			// Malformed: 400, naming the rule.
			{acme + "tile/0/0", acmeToken, 400, 0, "", "3-digit path elements"},
			{acme + "tile/0/1000", acmeToken, 400, 0, "", "3-digit path elements"},
			{acme + "tile/0/x000/000", acmeToken, 400, 0, "", "3-digit path elements"},
			{acme + "tile/0/001/002", acmeToken, 400, 0, "", "3-digit path elements"},
			{acme + "tile/0/000.p/256", acmeToken, 400, 0, "", "W 1 to 255"},
			{acme + "tile/0/000.p/0", acmeToken, 400, 0, "", "W 1 to 255"},
			{acme + "tile/0/000.p/07", acmeToken, 400, 0, "", "W 1 to 255"},
			{acme + "tile/0/000.p/", acmeToken, 400, 0, "", "W 1 to 255"},
			{acme + "tile/0/", acmeToken, 400, 0, "", "3-digit path elements"},
			{acme + "tile/00/000", acmeToken, 400, 0, "", "without leading zeros"},
			{acme + "tile/64/000", acmeToken, 400, 0, "", "0 to 63"},
			{acme + "tile/-1/000", acmeToken, 400, 0, "", "0 to 63"},
			{acme + "tile/data/000", acmeToken, 400, 0, "", "or a decimal number 0 to 63"},
			{acme + "tile/8/0/000", acmeToken, 400, 0, "", "3-digit path elements"}, // the sumdb spelling
			{acme + "tile/0/x999/x999/x999/x999/x999/x999/x999/999", acmeToken, 400, 0, "", "3-digit path elements"},
			{"/v1/tenants/acme/partitions/bad%01key/tlog/checkpoint", acmeToken, 400, 0, "", "partition"},

			// Tokens and tenants, as on every route.
			{acme + "tile/0/000", "", 401, 0, "", ""},
			{acme + "tile/0/000", "not-a-token", 401, 0, "", ""},
			{acme + "checkpoint", te.GlobexToken, 403, 0, "", "may not act for tenant"},
			{"/v1/tenants/pub/tlog/checkpoint", acmeToken, 200, -1, "public, max-age=5", ""},
		} {
			resp, b := get(c.path, c.token)
			if resp.StatusCode != c.status {
				t.Errorf("GET %s: %d %s, want %d", c.path, resp.StatusCode, b, c.status)
				continue
			}
			switch {
			case c.status != 200:
				if !strings.Contains(string(b), c.says) || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("GET %s: %d %s (%s), want it to say %q", c.path, resp.StatusCode, b, resp.Header.Get("Content-Type"), c.says)
				}
			case c.size < 0: // a checkpoint
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("GET %s: Content-Type %q", c.path, ct)
				}
				if _, err := note.Open(b, note.VerifierList(te.pub.NoteVerifier())); err != nil {
					t.Errorf("GET %s: %v", c.path, err)
				}
			default:
				if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" || len(b) != c.size {
					t.Errorf("GET %s: %d bytes of %q, want %d of application/octet-stream", c.path, len(b), ct, c.size)
				}
			}
			if cc := resp.Header.Get("Cache-Control"); c.status == 200 && cc != c.cacheControl {
				t.Errorf("GET %s: Cache-Control %q, want %q", c.path, cc, c.cacheControl)
			}
		}
		// Read-only: other methods get 405.
		if r := te.call("POST", acme+"checkpoint", acmeToken, nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("POST checkpoint: %d %s", r.status, r.raw)
		}
		if r := te.call("DELETE", acme+"tile/0/000", acmeToken, nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("DELETE a tile: %d %s", r.status, r.raw)
		}
	})
}
