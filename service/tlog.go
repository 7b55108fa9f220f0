package service

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
)

// Every chain is served read-only as a C2SP tlog-tiles log
// (https://c2sp.org/tlog-tiles; docs/audit.md, "Checking ordo with
// standard tools"). A log's prefix is
//
//	/v1/tenants/{tenant}/tlog/                          the default partition
//	/v1/tenants/{tenant}/partitions/{partition}/tlog/   any other, as one path segment ("/" as %2F)
//
// and below it checkpoint, tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>].
// Like every tenant route they need a token that may act for the tenant,
// unless the tenant is in Ordo:Audit:PublicTiles. audit.Tiles computes
// what they answer from the database.

// tlogRoutes lists the tlog-tiles routes (a part of apiRoutes).
func (s *Service) tlogRoutes() []apiRoute {
	var out []apiRoute
	for _, prefix := range []string{"/v1/tenants/{tenant}/tlog/", "/v1/tenants/{tenant}/partitions/{partition}/tlog/"} {
		out = append(out,
			apiRoute{"GET " + prefix + "checkpoint", s.tlogCheckpoint},
			apiRoute{"GET " + prefix + "tile/{level}/{index...}", s.tlogTile},
			apiRoute{"GET " + prefix + "tile/entries/{index...}", s.tlogTile},
		)
	}
	return out
}

// publicTiles serves h to anyone for a tenant listed in
// Ordo:Audit:PublicTiles, and passes every other request to guarded (the
// route behind tenantRoute's token checks).
func (s *Service) publicTiles(h tenantHandler, guarded http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		if s.tilesArePublic(tenant) {
			h(w, r, tenant, principal{})
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

func (s *Service) tilesArePublic(tenant string) bool {
	return slices.Contains(s.cfg.Load().Ordo.Audit.PublicTiles, tenant)
}

// tlogChain returns the chain a tlog route names: the tenant and the
// {partition} path segment, "" on the default partition's routes.
func tlogChain(w http.ResponseWriter, r *http.Request, tenant string) (chain.Key, bool) {
	partition := r.PathValue("partition")
	if err := chain.ValidatePartitionKey(partition); err != nil {
		writeError(w, badField("partition", "%v", err))
		return chain.Key{}, false
	}
	return chain.Key{TenantID: tenant, PartitionKey: partition}, true
}

// cacheControl says how long a tlog resource may be cached, and by whom:
// a tenant's tiles behind a token only by the client (private), a public
// tenant's by shared caches too.
func (s *Service) cacheControl(tenant string, maxAge int, immutable bool) string {
	who := "private"
	if s.tilesArePublic(tenant) {
		who = "public"
	}
	v := who + ", max-age=" + strconv.Itoa(maxAge)
	if immutable {
		v += ", immutable"
	}
	return v
}

// tlogError answers what audit.Tiles refused: a malformed path 400, a
// chain without a checkpoint or a tile outside its signed tree 404,
// anything else as the service's own failure.
func (s *Service) tlogError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, audit.ErrBadTilePath):
		writeError(w, badField("tile", "%v", err))
	case errors.Is(err, audit.ErrNoCheckpoint), errors.Is(err, audit.ErrNoTile):
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Msg: err.Error()})
	default:
		s.internal(w, r, err)
	}
}

// GET .../tlog/checkpoint: the chain's latest checkpoint, the signed note
// exactly as the checkpointer stored it, followed by the witnesses'
// cosignatures of it (extra signature lines).
func (s *Service) tlogCheckpoint(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	k, ok := tlogChain(w, r, tenant)
	if !ok {
		return
	}
	cp, _, err := s.tiles.Checkpoint(r.Context(), k)
	if err != nil {
		s.tlogError(w, r, err)
		return
	}
	msg, err := audit.WithCosignatures(r.Context(), audit.CosignatureStoreOf(s.q.Backend().AuditStore()), cp)
	if err != nil {
		s.tlogError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", s.cacheControl(tenant, tlogCheckpointMaxAge, false))
	_, _ = w.Write(msg)
}

// GET .../tlog/tile/<L>/<N>[.p/<W>] and .../tlog/tile/entries/<N>[.p/<W>].
func (s *Service) tlogTile(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	k, ok := tlogChain(w, r, tenant)
	if !ok {
		return
	}
	level := r.PathValue("level")
	if level == "" {
		level = "entries" // the entry bundles' route has no {level}
	}
	tile, err := audit.ParseTilePath(level, r.PathValue("index"))
	if err != nil {
		s.tlogError(w, r, err)
		return
	}
	b, err := s.tiles.Tile(r.Context(), k, tile)
	if err != nil {
		s.tlogError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if isFull(tile) {
		w.Header().Set("Cache-Control", s.cacheControl(tenant, tlogFullTileMaxAge, true))
	} else {
		w.Header().Set("Cache-Control", s.cacheControl(tenant, tlogPartialTileMaxAge, false))
	}
	_, _ = w.Write(b)
}

func isFull(t tlog.Tile) bool { return t.W == 1<<audit.TileHeight }
