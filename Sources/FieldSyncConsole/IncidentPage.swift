import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// One incident: its fields grouped as in docs/RECORD-MODEL.md, victims, perpetrators and
/// sources as tables, attachments (images inline, other files as downloads), its open conflicts,
/// and its history as a timeline of who changed what, when, with each signature's status.
struct IncidentPage {
    /// Media types shown inline; anything else (SVG included: it can carry script) is a download.
    static let inlineImages: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    static func text(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        return value.stringValue ?? value.canonicalText
    }

    static func render(store: ReplicaStore, state: RecordState, notice: String?, session: (id: String, csrf: String)?) throws -> HTML {
        let title = state.value(at: "title")?.stringValue ?? "(untitled)"
        var parts: [HTML] = ["<h1 dir=\"auto\">\(title)</h1>", "<p class=\"hint\">Record \(state.id.rawValue)</p>"]
        if let notice { parts.append("<p class=\"notice\" role=\"status\">\(notice)</p>") }
        if state.isDeleted { parts.append("<p class=\"notice\">This record is deleted; its history is kept.</p>") }
        let conflicted = Set(state.conflicts.map(\.path))
        if !conflicted.isEmpty {
            parts.append(
                "<p class=\"conflict\" role=\"status\">Open conflicts on \(conflicted.sorted().joined(separator: ", ")): <a href=\"/conflicts#r-\(state.id.rawValue)\">review them</a>.</p>"
            )
        }
        if !state.isDeleted { parts.append("<p><a class=\"button\" href=\"/incidents/\(state.id.rawValue)/edit\">Edit</a></p>") }
        for group in IncidentForm.groups {
            var rows: [HTML] = []
            for field in group.fields {
                guard let value = state.value(at: field.path) else { continue }
                let mark: HTML = conflicted.contains(field.path) ? " <span class=\"conflict\">(in conflict)</span>" : ""
                let shown: HTML =
                    field.path == "narrative"
                    ? "<dd dir=\"auto\" class=\"narrative\">\(text(value))</dd>" : "<dd dir=\"auto\">\(text(value))</dd>"
                rows.append("<dt>\(field.label)\(mark)</dt>\(shown)")
                if field.path == "status" || (field.path == "title" && state.value(at: "status") == nil) {
                    for path in ["violations", "tags"] where !state.elements(of: path).isEmpty {
                        rows.append("<dt>\(path.capitalized)</dt><dd dir=\"auto\">\(state.elements(of: path).joined(separator: ", "))</dd>")
                    }
                }
            }
            if !rows.isEmpty { parts.append("<section><h2>\(group.legend)</h2><dl class=\"facts\">\(rows)</dl></section>") }
        }
        for collection in IncidentForm.collections where collection.name != IncidentSchema.attachmentCollection {
            let entries = IncidentForm.entries(of: collection.name, in: state)
            guard !entries.isEmpty else { continue }
            let head = HTML.joined(collection.fields.map { "<th scope=\"col\">\(IncidentForm.label($0))</th>" })
            let rows = HTML.joined(
                entries.map { entry in
                    let cells = HTML.joined(
                        collection.fields.map { field in
                            "<td dir=\"auto\">\(text(state.value(at: "\(collection.name).\(entry).\(field)")))</td>"
                        })
                    return "<tr>\(cells)</tr>"
                })
            parts.append(
                "<section><h2>\(collection.name.capitalized)</h2><table><thead><tr>\(head)</tr></thead><tbody>\(rows)</tbody></table></section>"
            )
        }
        if let custom = state.fields.objectValue?["custom"]?.objectValue, !custom.isEmpty {
            let rows = HTML.joined(custom.keys.sorted().map { "<dt>\($0)</dt><dd dir=\"auto\">\(text(custom[$0]))</dd>" })
            parts.append("<section><h2>Free fields</h2><dl class=\"facts\">\(rows)</dl></section>")
        }
        parts.append(try attachments(store: store, state: state))
        parts.append(try history(store: store, state: state))
        return ConsolePage.render(title: title, current: nil, session: session, body: HTML.joined(parts))
    }

    static func attachments(store: ReplicaStore, state: RecordState) throws -> HTML {
        let entries = IncidentForm.entries(of: IncidentSchema.attachmentCollection, in: state)
        guard !entries.isEmpty else { return "" }
        var items: [HTML] = []
        for sha in entries {
            let base = "attachments.\(sha)"
            let name = text(state.value(at: "\(base).name"))
            let mediaType = text(state.value(at: "\(base).media_type"))
            let caption = text(state.value(at: "\(base).caption"))
            let size = state.value(at: "\(base).content").flatMap(AttachmentContent.init(json:))?.size ?? 0
            let local = try store.localState(of: sha)
            let link = "/incidents/\(state.id.rawValue)/attachments/\(sha)"
            let what: HTML
            if local != .complete {
                what =
                    "<p>\(name) (\(size) bytes): not on this laptop\(local == .partial ? " (partly fetched)" : ""); sync with attachments to fetch it.</p>"
            } else if inlineImages.contains(mediaType) {
                what = "<img class=\"attachment\" src=\"\(link)\" alt=\"\(caption.isEmpty ? name : caption)\">"
            } else {
                what = "<p><a href=\"\(link)\" download=\"\(name)\">Download \(name)</a> (\(mediaType), \(size) bytes)</p>"
            }
            let figcaption: HTML =
                caption.isEmpty
                ? "<figcaption dir=\"auto\">\(name)</figcaption>" : "<figcaption dir=\"auto\">\(caption) (\(name))</figcaption>"
            items.append("<figure>\(what)\(figcaption)<p class=\"hint\">SHA-256 \(sha)</p></figure>")
        }
        return "<section><h2>Attachments</h2>\(items)</section>"
    }

    static func history(store: ReplicaStore, state: RecordState) throws -> HTML {
        let revisions = HistoryOrder.canonical(try store.history(of: state.id))
        let steps = HistoryStep.replay(revisions.map(\.revision), authority: try store.resolutionAuthority())
        let directory = try store.keyDirectory()
        let ownKey = try store.publicKey()
        var items: [HTML] = []
        for (index, stored) in revisions.enumerated().reversed() {
            let revision = stored.revision
            let step = steps[index]
            let signature = SignatureStatus(of: revision, in: directory, ownKey: ownKey)
            let action: String =
                step.conflictsResolved.isEmpty
                ? (revision.kind == .delete ? "deleted the record" : "edited")
                : "resolved " + step.conflictsResolved.joined(separator: ", ")
            var changes: [HTML] = []
            for op in revision.operations {
                switch op {
                case .set(let path, let value):
                    changes.append("<li>set <code>\(path)</code> = <span dir=\"auto\">\(text(value))</span></li>")
                case .unset(let path): changes.append("<li>cleared <code>\(path)</code></li>")
                case .add(let path, let element):
                    changes.append("<li>added <span dir=\"auto\">\(element)</span> to <code>\(path)</code></li>")
                case .remove(let path, let element):
                    changes.append("<li>removed <span dir=\"auto\">\(element)</span> from <code>\(path)</code></li>")
                }
            }
            let signer: HTML = signature.signer.map { " (signed by \($0)'s device)" } ?? ""
            let note: HTML = revision.note.map { "<p>Note: <span dir=\"auto\">\($0)</span></p>" } ?? ""
            let created: HTML =
                step.conflictsCreated.isEmpty
                ? "" : "<p class=\"conflict\">conflict created on \(step.conflictsCreated.joined(separator: ", "))</p>"
            items.append(
                """
                <li><p><strong dir="auto">\(revision.author)</strong> \(action), \(ConsolePage.time(revision.time)) · node \(revision.dot.node.rawValue) #\(revision.dot.counter)</p>
                <p>Signature: <span class="sig-\(signature.state)">\(signature.text)</span>\(signer)</p>\(note)\(created)
                <ul>\(changes)</ul></li>
                """)
        }
        return
            "<section><h2>History (\(revisions.count) revision\(revisions.count == 1 ? "" : "s"))</h2><ol class=\"timeline\" reversed>\(items)</ol></section>"
    }
}
