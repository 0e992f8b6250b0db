import NIOHTTP1
import OutlawProtocol

extension MetrcClient {
    /// Sends `objects` (already mapped with `MetrcBody`) as one `action` request for `license`, signed with
    /// `userKey`. Never throws: every way it can end is a `MetrcResponse`. Row numbers outside the request
    /// are given as nil (the rows cannot be trusted).
    public func send(_ action: MetrcAction, license: String, objects: [JSONValue], userKey: String) async -> MetrcResponse {
        let body = Array(JSONValue.array(objects).serialized().utf8)
        let exchange = await exchange(method: HTTPMethod(rawValue: action.method), path: action.path,
                                      query: [("licenseNumber", license)], userKey: userKey, body: body)
        switch exchange {
        case .failure(let reason):
            return .transportFailure(reason)
        case .answer(let status, let retryAfter, let bytes):
            switch MetrcResponse.classify(status: status, retryAfter: retryAfter, body: bytes) {
            case .rejected(let errors):
                return .rejected(errors.map { error in
                    MetrcRowError(row: error.row.flatMap { objects.indices.contains($0) ? $0 : nil },
                                  message: redact(error.message, userKey: userKey))
                })
            case .serverFault(let status, let message):
                return .serverFault(status: status, message: redact(message, userKey: userKey))
            case .notFound(let message):
                return .notFound(message: redact(message, userKey: userKey))
            case let other:
                return other
            }
        }
    }
}
