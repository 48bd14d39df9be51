import ServiceLifecycle

/// The periodic half of identity key maintenance: every `interval`, keys whose `rotation_period` is over are
/// rotated and retired public keys whose `verification_ttl` is over are pruned (`IdentityOIDC.sweep`), so that the
/// JWKS changes on time even when no request uses a key. Requests do the same lazily (a token or a JWKS read finds
/// a due key rotated first), so a rotation is never later than the first use after it became due. A service of
/// vhsmd's group: it stops at a graceful shutdown, and does nothing while the store is sealed or not initialised.
struct IdentityKeyRotation: Service {
    let runtime: Runtime
    var interval: Duration = .seconds(60)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                sweep()
            }
        }
    }

    func sweep() {
        guard let services = runtime.services else { return }
        do {
            for name in try services.identity.sweep() {
                announce("vhsmd: identity key rotation: rotated identity/oidc/key/\(name)")
            }
        } catch {
            complain("vhsmd: identity key rotation: \(error)")
        }
    }
}
