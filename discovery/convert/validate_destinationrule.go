package convert

import (
	networking "istio.io/api/networking/v1"
)

// validateDestinationRule checks the host, the subsets and the traffic
// policies (limits that Envoy holds in unsigned fields must not be negative).
func validateDestinationRule(dr *networking.DestinationRule) *fieldError {
	if dr.GetHost() == "" {
		return errf("spec.host", "host is required")
	}
	if fe := validateTrafficPolicy(dr.GetTrafficPolicy(), "spec.trafficPolicy"); fe != nil {
		return fe
	}
	seen := map[string]int{}
	for i, s := range dr.GetSubsets() {
		p := at("spec.subsets", i)
		if s.GetName() == "" {
			return errf(p+".name", "subset name is required")
		}
		if first, dup := seen[s.GetName()]; dup {
			return errf(p+".name", "duplicate subset name %q (also spec.subsets[%d])", s.GetName(), first)
		}
		seen[s.GetName()] = i
		if _, ok := s.GetLabels()[""]; ok {
			return errf(p+".labels", "label keys must not be empty")
		}
		if fe := validateTrafficPolicy(s.GetTrafficPolicy(), p+".trafficPolicy"); fe != nil {
			return fe
		}
	}
	return nil
}

func validateTrafficPolicy(tp *networking.TrafficPolicy, p string) *fieldError {
	if tp == nil {
		return nil
	}
	if fe := validatePolicyLimits(tp.GetConnectionPool(), tp.GetOutlierDetection(), p); fe != nil {
		return fe
	}
	for i, pl := range tp.GetPortLevelSettings() {
		pp := at(p+".portLevelSettings", i)
		if n := pl.GetPort().GetNumber(); n < 1 || n > 65535 {
			return errf(pp+".port.number", "port %d is out of range 1-65535", n)
		}
		if fe := validatePolicyLimits(pl.GetConnectionPool(), pl.GetOutlierDetection(), pp); fe != nil {
			return fe
		}
	}
	return nil
}

func validatePolicyLimits(cp *networking.ConnectionPoolSettings, od *networking.OutlierDetection, p string) *fieldError {
	for _, f := range []struct {
		field string
		v     int32
	}{
		{"connectionPool.tcp.maxConnections", cp.GetTcp().GetMaxConnections()},
		{"connectionPool.http.http1MaxPendingRequests", cp.GetHttp().GetHttp1MaxPendingRequests()},
		{"connectionPool.http.http2MaxRequests", cp.GetHttp().GetHttp2MaxRequests()},
		{"connectionPool.http.maxRequestsPerConnection", cp.GetHttp().GetMaxRequestsPerConnection()},
		{"connectionPool.http.maxRetries", cp.GetHttp().GetMaxRetries()},
		{"connectionPool.http.maxConcurrentStreams", cp.GetHttp().GetMaxConcurrentStreams()},
	} {
		if f.v < 0 {
			return errf(p+"."+f.field, "%d must not be negative", f.v)
		}
	}
	for _, f := range []struct {
		field string
		v     int32
	}{
		{"outlierDetection.maxEjectionPercent", od.GetMaxEjectionPercent()},
		{"outlierDetection.minHealthPercent", od.GetMinHealthPercent()},
	} {
		if f.v < 0 || f.v > 100 {
			return errf(p+"."+f.field, "%d is out of range 0-100", f.v)
		}
	}
	return nil
}
