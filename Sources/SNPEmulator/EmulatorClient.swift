public import SNP

/// The guest side of the emulator link: a `GuestDevice` that sends framed firmware messages over a unix socket
/// or a virtio-serial port (`/dev/vport0p1` inside the VM). Each request opens, exchanges one frame, closes,
/// except on a character device, which QEMU keeps open.
public struct EmulatorClient: GuestDevice {
    public let path: String
    public var name: String { "emulator at \(path)" }

    public init(path: String) { self.path = path }

    public func report(_ request: ReportRequest) throws -> ReportResponse {
        let response = try exchange(.init(type: .report, payload: request.bytes), expecting: .reportResponse)
        return try ReportResponse(bytes: response)
    }

    public func derivedKey(_ request: DerivedKeyRequest) throws -> DerivedKeyResponse {
        var payload = try exchange(.init(type: .derivedKey, payload: request.bytes), expecting: .derivedKeyResponse)
        defer { for index in payload.indices { payload[index] = 0 } }
        return try DerivedKeyResponse(bytes: payload)
    }

    /// The extended report with the kernel's buffer round trip: one page first, then the size the host asks for.
    public func extendedReport(_ request: ReportRequest) throws -> (ReportResponse, CertificateTable) {
        var bufferSize = 4096
        for _ in 0..<2 {
            var w = ByteWriter()
            w.bytes(request.bytes)
            w.integer(UInt32(bufferSize))
            let payload = try exchange(
                .init(type: .extendedReport, payload: w.bytes), expecting: .extendedReportResponse)
            var r = ByteReader(payload)
            let status: UInt32 = try r.integer()
            let needed = Int(try r.integer(UInt32.self))
            if status == 1 {
                guard needed <= WireProtocol.maximumCertificateBuffer else {
                    throw EmulatorError.certificateBufferTooLarge(required: needed)
                }
                bufferSize = needed
                continue
            }
            let response = try ReportResponse(bytes: try r.bytes(ReportResponse.byteCount))
            let table = try CertificateTable(bytes: try r.bytes(r.remaining))
            return (response, table)
        }
        throw EmulatorError.protocolViolation("the emulator asked for a larger certificate buffer twice")
    }

    private func exchange(_ frame: WireProtocol.Frame, expecting type: WireProtocol.FrameType) throws -> [UInt8] {
        let connection = try StreamConnection.open(path)
        try connection.write(frame.bytes)
        guard let reply = try connection.readFrame() else {
            throw EmulatorError.protocolViolation("the emulator closed the link without answering")
        }
        if reply.type == .error { throw EmulatorError.serverError(String(decoding: reply.payload, as: UTF8.self)) }
        guard reply.type == type else {
            throw EmulatorError.protocolViolation("expected a \(type) frame, got \(reply.type)")
        }
        return reply.payload
    }
}
