package xdsclient

import (
	"context"
	"unique"
	"unsafe"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// update is one response of either protocol, in a common form.
type update struct {
	typeURL, version, nonce string
	res                     []resource
	removed                 []string
	bytes                   int
	// full: the response is the whole state of its type (state of the
	// world CDS and LDS). delta: it came on a delta stream.
	full, delta bool
	// buf is the pooled buffer the resources alias, released by the
	// client once the update is handled (nothing it keeps aliases it).
	buf *[]byte
}

// resource is one resource of an update; name and refs are filled in by
// decode (a delta resource arrives with its name and version).
type resource struct {
	name string
	// handle is the interned name's (set by decode), which whoever keeps
	// the name keeps too (see intern).
	handle unique.Handle[string]
	// any is a state-of-the-world resource. A delta resource's body is
	// typeURL and value instead (body is set if it has one): no Any is
	// allocated for it. version is a delta resource's (aliased).
	any     *anypb.Any
	typeURL string
	value   []byte
	body    bool
	version string
	refs    []string
}

// payload returns the resource's type URL and encoded value, and whether
// it has a body at all (a delta resource may carry its name only).
func (r *resource) payload() (typeURL string, value []byte, ok bool) {
	if r.any != nil {
		return r.any.GetTypeUrl(), r.any.GetValue(), true
	}
	return r.typeURL, r.value, r.body
}

// transport is one ADS stream, state of the world or delta.
type transport interface {
	recv() (*update, error)
	// ack ACKs u, or NACKs it if nackErr is set; version is the last
	// accepted version of its type and names the names subscribed to.
	ack(u *update, version string, names []string, nackErr error) error
	// subscribe requests type t: names is the full list (state of the
	// world, nil = wildcard), added and removed the change (delta).
	subscribe(t string, names, added, removed []string) error
}

func nackStatus(err error) *rpcstatus.Status {
	if err == nil {
		return nil
	}
	return &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}

// sotw is a state-of-the-world stream.
type sotw struct {
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *core.Node
	names  map[string]encodedNames // by type URL: the last names ACKed
}

// encodedNames is a list of resource names and its encoding as
// DiscoveryRequest.resource_names. A state-of-the-world EDS ACK repeats
// every name subscribed to (1,000 at 1,000 services); the list changes
// only with the subscription, so it is encoded once per change.
type encodedNames struct {
	list []string // kept, so that its address is not reused while cached
	enc  []byte
}

// requestNames is DiscoveryRequest.resource_names.
const requestNames = 3

// encoded returns names encoded, from the cache when names is the list
// last ACKed for typeURL.
func (s *sotw) encoded(typeURL string, names []string) []byte {
	if e, ok := s.names[typeURL]; ok && len(e.list) == len(names) && unsafe.SliceData(e.list) == unsafe.SliceData(names) {
		return e.enc
	}
	var enc []byte
	for _, n := range names {
		enc = protowire.AppendString(protowire.AppendTag(enc, requestNames, protowire.BytesType), n)
	}
	if s.names == nil {
		s.names = map[string]encodedNames{}
	}
	s.names[typeURL] = encodedNames{list: names, enc: enc}
	return enc
}

func openSotW(ctx context.Context, conn grpc.ClientConnInterface, node *core.Node) (transport, error) {
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx, callCodec)
	if err != nil {
		return nil, err
	}
	return &sotw{stream: s, node: node}, nil
}

func (s *sotw) recv() (*update, error) {
	resp := &discovery.DiscoveryResponse{}
	r := received{msg: resp} // the codec decodes resp and sets r.size
	if err := s.stream.RecvMsg(&r); err != nil {
		return nil, err
	}
	t := shortType(resp.GetTypeUrl())
	u := &update{typeURL: resp.GetTypeUrl(), version: resp.GetVersionInfo(), nonce: resp.GetNonce(),
		bytes: r.size, full: t == "cds" || t == "lds", res: make([]resource, len(resp.GetResources())), buf: r.buf}
	for i, a := range resp.GetResources() {
		u.res[i].any = a
	}
	return u, nil
}

// ack sends the request's other fields encoded by protobuf, followed by
// the names' cached encoding (protobuf accepts fields in any order).
func (s *sotw) ack(u *update, version string, names []string, nackErr error) error {
	req := &discovery.DiscoveryRequest{TypeUrl: u.typeURL, ResponseNonce: u.nonce,
		VersionInfo: u.version, ErrorDetail: nackStatus(nackErr)}
	if nackErr != nil {
		req.VersionInfo = version
	}
	head, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	return s.stream.SendMsg(preEncoded{mem.SliceBuffer(head), mem.SliceBuffer(s.encoded(u.typeURL, names))})
}

func (s *sotw) subscribe(t string, names, _, _ []string) error {
	req := &discovery.DiscoveryRequest{TypeUrl: typeURLs[t], ResourceNames: names}
	if t == "cds" || t == "lds" { // the opening requests carry the node
		req.Node = s.node
	}
	return s.stream.Send(req)
}

// delta is an incremental stream.
type delta struct {
	stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	node   *core.Node
}

func openDelta(ctx context.Context, conn grpc.ClientConnInterface, node *core.Node) (transport, error) {
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx, callCodec)
	if err != nil {
		return nil, err
	}
	return &delta{stream: s, node: node}, nil
}

func (d *delta) recv() (*update, error) {
	var m deltaMessage
	r := received{msg: &m}
	if err := d.stream.RecvMsg(&r); err != nil {
		return nil, err
	}
	// The codec has interned the removed names; decode interns the
	// resource names and hold the versions it keeps (they alias the
	// response's buffer).
	return &update{typeURL: m.typeURL, version: m.version, nonce: m.nonce, bytes: r.size, delta: true,
		removed: m.removed, buf: r.buf, res: m.res}, nil
}

func (d *delta) ack(u *update, _ string, _ []string, nackErr error) error {
	return d.stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: u.typeURL, ResponseNonce: u.nonce,
		ErrorDetail: nackStatus(nackErr)})
}

func (d *delta) subscribe(t string, _, added, removed []string) error {
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: typeURLs[t], ResourceNamesSubscribe: added,
		ResourceNamesUnsubscribe: removed}
	if t == "cds" || t == "lds" {
		req.Node = d.node
	}
	return d.stream.Send(req)
}
