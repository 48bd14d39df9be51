/// The JSON of the two lines, in the shape of OpenBao's file device (keys sorted by `JSONValue.serialized`).
extension AuditDevice {
    func requestLine(_ entry: AuditRequest, error: String?, time: String) -> JSONValue {
        var line: [String: JSONValue] = [
            "time": .string(time), "type": .string("request"), "auth": auth(entry), "request": request(entry),
        ]
        if let error { line["error"] = .string(error) }
        return .object(line)
    }

    func responseLine(_ entry: AuditRequest, response: AuditResponse, time: String) -> JSONValue {
        var body: [String: JSONValue] = [:]
        body["mount_point"] = entry.mountPoint.map(JSONValue.string)
        body["mount_type"] = entry.mountType.map(JSONValue.string)
        if let data = response.data, data != .null { body["data"] = hashed(data) }
        if case .object(var auth)? = response.auth {
            for key in ["client_token", "accessor"] {
                if case .string(let value)? = auth[key], !value.isEmpty { auth[key] = .string(hash(value)) }
            }
            body["auth"] = .object(auth)
        }
        if case .object(var info)? = response.wrapInfo {
            for key in ["token", "accessor", "wrapped_accessor"] {
                if case .string(let value)? = info[key], !value.isEmpty { info[key] = .string(hash(value)) }
            }
            body["wrap_info"] = .object(info)
        }
        var line: [String: JSONValue] = [
            "time": .string(time), "type": .string("response"), "auth": auth(entry), "request": request(entry),
            "response": .object(body),
        ]
        if let error = response.error { line["error"] = .string(error) }
        return .object(line)
    }

    /// `value` with every string in it (at any depth) replaced by its hash; keys, numbers, booleans and null
    /// stay as they are.
    func hashed(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(hash(text))
        case .array(let values): .array(values.map(hashed))
        case .object(let members): .object(members.mapValues(hashed))
        case .null, .bool, .int, .double: value
        }
    }

    /// The caller's token as the log shows it; an unauthenticated request has only `token_type: default`.
    private func auth(_ entry: AuditRequest) -> JSONValue {
        guard let accessor = entry.accessor else { return .object(["token_type": .string("default")]) }
        var auth: [String: JSONValue] = [
            "accessor": .string(hash(accessor)), "display_name": .string(entry.displayName),
            "policies": .array(entry.policies.map(JSONValue.string)),
            "token_policies": .array(entry.policies.map(JSONValue.string)), "token_type": .string("service"),
        ]
        if let token = entry.clientToken { auth["client_token"] = .string(hash(token)) }
        return .object(auth)
    }

    private func request(_ entry: AuditRequest) -> JSONValue {
        var request: [String: JSONValue] = [
            "id": .string(entry.id), "operation": .string(entry.operation), "path": .string(entry.path),
            "namespace": .object(["id": .string("root")]),
        ]
        if let token = entry.clientToken { request["client_token"] = .string(hash(token)) }
        if let accessor = entry.accessor { request["client_token_accessor"] = .string(hash(accessor)) }
        if let data = entry.data, data != .null, data != .object([:]) { request["data"] = hashed(data) }
        request["remote_address"] = entry.remoteAddress.map(JSONValue.string)
        request["remote_port"] = entry.remotePort.map { JSONValue.int(Int64($0)) }
        request["mount_point"] = entry.mountPoint.map(JSONValue.string)
        request["mount_type"] = entry.mountType.map(JSONValue.string)
        return .object(request)
    }
}
