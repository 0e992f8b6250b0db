import Foundation
import OutlawStore

/// Performing one pass: `UploadPass` decides, this runs what it asks for as child tasks and tells it what they finished.
extension Uploader {
    /// What a child task of a pass finished.
    enum Step: Sendable {
        /// nil: uploads are paused.
        case planned(NextPlan?)
        case planFailed(any Error)
        case recorded(RecordedRequest?, slot: Int?)
        case answered(Answer)
        case concluded(attempt: Int64)
        case tookBack
    }

    /// One pass: performs `UploadPass`'s actions, each a child task, and feeds it what they finish. Returns whether
    /// anything was sent or decided; throws when the queue could not be read.
    func pass() async throws -> Bool {
        let store = self.store
        let open = try await Blocking.run { () -> Bool in
            if try store.uploadsPaused() { return false }
            // A key set by outlawctl without the store key is sealed here, by the daemon that has it.
            try store.sealPlainKeys()
            return true
        }
        guard open else { return false }
        await defaultKey.recheckIfDue()
        var pass = UploadPass(concurrency: configuration.concurrency, objectsPerRequest: configuration.objectsPerRequest)
        var failure: (any Error)?
        let worked = await withTaskGroup(of: Step.self) { group in
            var actions = pass.start()
            while true {
                for action in actions {
                    if case .finish(let worked) = action { return worked }
                    perform(action, in: &group)
                }
                guard let step = await group.next() else { return pass.worked }  // not reached: `finish` comes first
                actions = await stopping(pass) ? pass.stop() : []
                switch step {
                case .planned(let plan?): actions += pass.planRead(plan.requests, backlog: plan.backlog, decided: plan.decided)
                case .planned(nil): actions += pass.stop() + pass.planRead([], decided: false)
                case .planFailed(let error):
                    failure = error
                    actions += pass.planFailed()
                case .recorded(let request, let slot): actions += pass.recorded(request, slot: slot)
                case .answered(let answer): actions += pass.answered(answer)
                case .concluded(let attempt):
                    beat()
                    actions += pass.concluded(attempt: attempt)
                case .tookBack: actions += pass.tookBack()
                }
            }
        }
        if let failure { throw failure }
        return worked
    }

    private func perform(_ action: UploadPass.Action, in group: inout TaskGroup<Step>) {
        let (reader, sender) = (self.reader, self.sender)
        switch action {
        case .readPlan(let sent):
            group.addTask {
                do { return .planned(try await reader.nextPlan(excluding: sent)) } catch { return .planFailed(error) }
            }
        case .record(let request, let slot): group.addTask { .recorded(await sender.record(request), slot: slot) }
        case .send(let request): group.addTask { .answered(await sender.transmit(request)) }
        case .conclude(let answer):
            group.addTask {
                await sender.conclude(answer)
                return .concluded(attempt: answer.recorded.attemptID)
            }
        case .takeBack(let requests):
            group.addTask {
                await sender.takeBack(requests)
                return .tookBack
            }
        case .finish: break
        }
    }

    /// Whether the pass should stop before anything more starts: the daemon is stopping, or uploads were paused
    /// (looked for only while requests wait to start; a store that cannot say counts as paused).
    private func stopping(_ pass: UploadPass) async -> Bool {
        if Task.isCancelled { return true }
        guard pass.hasUnsent else { return false }
        let store = self.store
        return (try? await Blocking.run { try store.uploadsPaused() }) != false
    }
}
