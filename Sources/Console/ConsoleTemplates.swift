import Mustache

/// The console's pages as Mustache templates, compiled into the binary: no folder of templates to find at run time
/// (a packaged outlawd under `ProtectSystem=strict` reads nothing beside itself), and a page's HTML is reviewed next
/// to the code that fills it. `{{x}}` escapes HTML; `{{{body}}}` takes only the output of these templates.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in sources {
            // The templates are constants of this file: a parse error is a programming error the unit tests catch.
            library.register(try! MustacheTemplate(string: text), named: name)
        }
        return library
    }()

    static func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }

    static let sources: [String: String] = [
        "layout": layout, "signin": signin, "settings": settings, "users": users, "keys": keys, "review": review,
        "failed": failed, "status": status, "message": message,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        {{#refresh}}<meta http-equiv="refresh" content="{{refresh}}">{{/refresh}}
        <title>{{title}} · Outlaw console</title><link rel="stylesheet" href="/console.css"></head>
        <body><header><strong>Outlaw console</strong>
        {{#signedIn}}<span class="who">{{userName}} ({{roleName}})</span>
        <nav>{{#nav}}<a href="/{{path}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a> {{/nav}}</nav>
        <form method="post" action="/signout" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button id="signout">Sign out</button></form>
        {{/signedIn}}</header>
        <main><h1>{{title}}</h1>
        {{#notice}}<p class="notice" id="notice">{{notice}}</p>{{/notice}}
        {{#problem}}<p class="problem" id="problem">{{problem}}</p>{{/problem}}
        {{{body}}}
        </main></body></html>
        """

    static let message = """
        <p id="message">{{text}}</p>
        {{#link}}<p><a href="{{href}}">{{label}}</a></p>{{/link}}
        """

    static let signin = """
        <form method="post" action="/signin">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <p><label>User name<br><input name="user" id="user" value="{{user}}" maxlength="64" autocomplete="username" required></label></p>
        <p><label>PIN<br><input name="pin" id="pin" type="password" maxlength="32" autocomplete="current-password" required></label></p>
        <p><button id="signin">Sign in</button></p>
        </form>
        """

    static let keyForm = """
        <form method="post" action="{{action}}">
        <input type="hidden" name="csrf" value="{{csrf}}">{{#target}}<input type="hidden" name="user" value="{{target}}">{{/target}}
        <p><label>Metrc API key{{#target}} for {{target}}{{/target}}<br><input name="key" id="key{{suffix}}" type="password" maxlength="200" autocomplete="off" required></label>
        <button id="setkey{{suffix}}">Check with Metrc and save</button></p>
        </form>
        """

    static let settings = """
        <h2>Your Metrc key</h2>
        <p id="signing">{{signing}}</p>
        {{#key}}<p>Your key: …{{last4}}, {{status}}, set by {{setBy}} on {{setAt}}. Expected to expire {{expiry}}.</p>{{/key}}
        <p>Copy your key from Metrc's web console (your user menu, "API Keys") and paste it here. Metrc checks it before it is saved.</p>
        \(keyForm)
        {{#key}}<form method="post" action="/settings/key/clear"><input type="hidden" name="csrf" value="{{csrf}}">
        <p><button id="clearkey">Remove my key</button> (the Default key signs for you again)</p></form>{{/key}}
        <h2>Your last uploads</h2>
        {{#hasUploads}}<table><tr><th>Batch</th><th>Received</th><th>Events</th><th>Signed with</th><th>Last message</th></tr>
        {{#uploads}}<tr><td>{{device}} {{batch}}</td><td>{{received}}</td><td>{{states}}</td><td>{{signed}}</td><td>{{message}}</td></tr>{{/uploads}}
        </table>{{/hasUploads}}
        {{^uploads}}<p>No batches of yours are stored yet.</p>{{/uploads}}
        """

    static let users = """
        <table><tr><th>User</th><th>Role</th><th>State</th><th>Key</th>{{#admin}}<th>Change</th>{{/admin}}</tr>
        {{#people}}<tr id="user-{{name}}"><td>{{name}}</td><td>{{role}}</td><td>{{state}}</td><td>{{key}}</td>
        {{#admin}}<td>
        <form method="post" action="/users/{{toggle}}" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="user" value="{{name}}"><button id="{{toggle}}-{{name}}">{{toggleLabel}}</button></form>
        <form method="post" action="/users/pin" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="user" value="{{name}}"><label>New PIN <input name="pin" id="pin-{{name}}" type="password" maxlength="32" size="6" required></label> <button id="setpin-{{name}}">Reset PIN</button></form>
        <form method="post" action="/users/key" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="user" value="{{name}}"><label>Metrc key <input name="key" id="key-{{name}}" type="password" maxlength="200" size="12" autocomplete="off" required></label> <button id="setkey-{{name}}">Check and save key</button></form>
        {{#hasKey}}<form method="post" action="/users/key/clear" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="user" value="{{name}}"><button id="clearkey-{{name}}">Remove key</button></form>{{/hasKey}}
        </td>{{/admin}}</tr>{{/people}}
        </table>
        {{#admin}}<h2>Add a person</h2>
        <form method="post" action="/users/add"><input type="hidden" name="csrf" value="{{csrf}}">
        <p><label>User name <input name="user" id="new-user" maxlength="64" required></label>
        <label>Role <select name="role" id="new-role"><option value="user">User</option><option value="console">Console</option><option value="admin">Admin</option></select></label>
        <label>PIN <input name="pin" id="new-pin" type="password" maxlength="32" size="6" required></label>
        <button id="add-user">Add</button></p></form>{{/admin}}
        """

    static let keys = """
        {{#hasRows}}<table><tr><th>Whose</th><th>Kind</th><th>Key</th><th>Status</th><th>Set by, when</th><th>Last check</th><th>Expected expiry</th></tr>
        {{#rows}}<tr{{#urgent}} class="urgent"{{/urgent}}><td>{{whose}}</td><td>{{kind}}</td><td>…{{last4}}</td><td>{{status}}</td><td>{{setBy}}, {{setAt}}</td><td>{{lastCheck}}</td><td>{{expiry}}{{#expiring}} (soon: set a new key){{/expiring}}</td></tr>{{/rows}}
        </table>{{/hasRows}}
        {{^rows}}<p>No keys are known yet: no personal key is set, and the daemon has not used a Default key.</p>{{/rows}}
        """

    static let review = """
        {{^batches}}<p id="nothing">Nothing waits for review.</p>{{/batches}}
        {{#batches}}<section class="batch" id="review-{{device}}-{{id}}"><h2>{{device}} {{id}}</h2>
        <p>Collected by {{user}} for {{license}}; stored {{received}}.</p>
        <table><tr><th>Seq</th><th>Type</th><th>Tag</th><th>Collected</th><th>Why it waits</th><th>Decide this event</th></tr>
        {{#events}}<tr><td>{{seq}}</td><td>{{type}}</td><td>{{tag}}</td><td>{{at}}</td><td>{{why}}</td><td>
        <form method="post" action="/review/approve" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="device" value="{{device}}"><input type="hidden" name="batch" value="{{id}}"><input type="hidden" name="seq" value="{{seq}}"><button id="approve-{{device}}-{{id}}-{{seq}}">Approve</button></form>
        <form method="post" action="/review/reject" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="device" value="{{device}}"><input type="hidden" name="batch" value="{{id}}"><input type="hidden" name="seq" value="{{seq}}"><input name="reason" id="reason-{{device}}-{{id}}-{{seq}}" maxlength="500" placeholder="reason" required> <button id="reject-{{device}}-{{id}}-{{seq}}">Reject</button></form>
        </td></tr>{{/events}}</table>
        <form method="post" action="/review/approve" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="device" value="{{device}}"><input type="hidden" name="batch" value="{{id}}"><button id="approve-{{device}}-{{id}}">Approve the whole batch</button></form>
        <form method="post" action="/review/reject" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="device" value="{{device}}"><input type="hidden" name="batch" value="{{id}}"><input name="reason" id="reason-{{device}}-{{id}}" maxlength="500" placeholder="reason" required> <button id="reject-{{device}}-{{id}}">Reject the whole batch</button></form>
        </section>{{/batches}}
        """

    static let failed = """
        {{^batches}}<p id="nothing">No batch has failed events.</p>{{/batches}}
        {{#batches}}<section class="batch" id="failed-{{device}}-{{id}}"><h2>{{device}} {{id}}</h2>
        <p>Collected by {{user}} for {{license}}; stored {{received}}.</p>
        <table><tr><th>Seq</th><th>Type</th><th>Tag</th><th>State</th><th>Metrc's message</th><th>What to do</th></tr>
        {{#events}}<tr><td>{{seq}}</td><td>{{type}}</td><td>{{tag}}</td><td>{{state}}</td><td>{{message}}</td><td>{{hint}}</td></tr>{{/events}}</table>
        <form method="post" action="/failed/replay"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="device" value="{{device}}"><input type="hidden" name="batch" value="{{id}}">
        <button id="replay-{{device}}-{{id}}">Replay this batch's failed events</button></form>
        </section>{{/batches}}
        """

    static let status = """
        <table id="status">{{#lines}}<tr><th>{{label}}</th><td>{{value}}</td></tr>{{/lines}}</table>
        {{#hasReasons}}<h2>Why</h2><ul>{{#reasons}}<li>{{.}}</li>{{/reasons}}</ul>{{/hasReasons}}
        <p>As of {{asOf}}; this page refreshes every {{every}} seconds.</p>
        """

    /// The one stylesheet (inline styles would need a weaker Content-Security-Policy).
    static let css = """
        body{font-family:system-ui,sans-serif;margin:0 auto;max-width:70em;padding:0 1em;line-height:1.4}
        header{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;border-bottom:1px solid #999;padding:.5em 0}
        nav a{margin-right:.5em}nav a[aria-current]{font-weight:bold}
        table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
        .notice{background:#e6f4e6;padding:.5em}.problem{background:#fbe3e3;padding:.5em}.urgent{background:#fff3cd}
        form.inline{display:inline-block;margin:.1em .3em .1em 0}input,select,button{font-size:1em}
        """
}
