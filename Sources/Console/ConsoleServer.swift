import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import OutlawProtocol
import ServiceLifecycle

/// The request context: Hummingbird's, plus the remote address sign-in failures are spaced by.
struct ConsoleRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remote: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remote = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Forms are small: a larger body is refused before it is read further.
    var maxUploadSize: Int { ConsoleForm.maxBodyBytes }
}

/// The HTTPS side of the console (Hummingbird over TLS 1.2 or newer): turns each HTTP request into a
/// `ConsoleRequest`, and each `ConsoleResponse` into an answer with the headers every answer carries.
public struct ConsoleServer: Service {
    public static let cookieName = "__Host-outlaw"
    let app: ConsoleApp
    let host: String
    let port: Int
    let tls: TLSConfiguration
    let logger: Logger
    let onListening: @Sendable (Int) -> Void

    public init(app: ConsoleApp, host: String, port: Int, tls: TLSConfiguration, logger: Logger,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.app = app
        self.host = host
        self.port = port
        var tls = tls
        tls.minimumTLSVersion = .tlsv12
        self.tls = tls
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let app = self.app
        let responder = CallbackResponder<ConsoleRequestContext> { request, context in
            await Self.respond(app: app, request: request, remote: context.remote)
        }
        var hbLogger = logger
        // Hummingbird logs each request at debug and errors at info: kept below the daemon's own notices.
        hbLogger.logLevel = max(logger.logLevel, .notice)
        let onListening = self.onListening
        let server = Application(
            responder: responder, server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: hbLogger)
        do {
            try await server.runService(gracefulShutdownSignals: [])
        } catch {
            logger.warning("the web console is not served: \(error)",
                           metadata: MessageID.consoleNotServed.metadata(["listen": "\(host):\(port)"]))
            // The console is not worth stopping devices and uploads for: wait for the daemon's own stop.
            try? await gracefulShutdown()
        }
    }

    static func respond(app: ConsoleApp, request: Request, remote: String) async -> Response {
        var request = request
        var form: ConsoleForm?
        if request.method == .post {
            do {
                let body = try await request.collectBody(upTo: ConsoleForm.maxBodyBytes)
                form = try ConsoleForm(body: Array(buffer: body))
            } catch let refusal as ConsoleForm.Refusal {
                return answer(ConsoleResponse(status: 400, body: plain(refusal.description)))
            } catch {
                return answer(ConsoleResponse(status: 413, body: plain("The form was larger than this console takes.")))
            }
        }
        let console = ConsoleRequest(method: request.method.rawValue, path: String(request.uri.path.prefix(200)),
                                     sessionToken: sessionToken(request.headers[values: .cookie]), form: form, remote: remote)
        return answer(await app.handle(console))
    }

    /// The session cookie's token from the `Cookie` headers (the first one named `__Host-outlaw`).
    static func sessionToken(_ headers: [String]) -> String? {
        for header in headers.prefix(8) {
            for part in header.split(separator: ";").prefix(50) {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix(cookieName + "=") { return String(pair.dropFirst(cookieName.count + 1).prefix(100)) }
            }
        }
        return nil
    }

    /// The `Set-Cookie` of a session token; `""` clears the cookie.
    static func sessionCookie(_ token: String) -> String {
        let life = token.isEmpty ? "; Max-Age=0" : ""
        return "\(cookieName)=\(token); Path=/; Secure; HttpOnly; SameSite=Strict\(life)"
    }

    /// The headers of every answer: no caching, no framing, no scripts or styles from anywhere else.
    static let fixedHeaders: [(String, String)] = [
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", "default-src 'self'; form-action 'self'; frame-ancestors 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Strict-Transport-Security", "max-age=31536000"),
    ]

    /// An answer's headers: the fixed ones, its type, and its cookie and redirect when it has them.
    static func headers(for response: ConsoleResponse) -> [(String, String)] {
        var headers = fixedHeaders + [("Content-Type", response.contentType)]
        if let token = response.setSession { headers.append(("Set-Cookie", sessionCookie(token))) }
        if let location = response.location { headers.append(("Location", location)) }
        return headers
    }

    static func answer(_ response: ConsoleResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in headers(for: response) {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        return Response(status: HTTPResponse.Status(code: response.status), headers: fields,
                        body: ResponseBody(byteBuffer: ByteBuffer(string: response.body)))
    }

    static func plain(_ sentence: String) -> String {
        ConsoleTemplates.render("layout", ["title": "Refused", "problem": sentence, "body": ""])
    }
}
