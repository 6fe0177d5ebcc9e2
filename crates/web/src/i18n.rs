//! The interface in English and Japanese. Every visible string has a key here; a test checks
//! that every key the templates use exists in both languages, so no page shows a raw key.

use std::collections::HashMap;
use std::sync::LazyLock;

use daicho_domain::Lang;

/// (key, English, Japanese)
const MESSAGES: &[(&str, &str, &str)] = &[
    ("nav.skip", "Skip to content", "本文へ移動"),
    ("nav.main", "Main", "メイン"),
    ("nav.home", "Home", "ホーム"),
    ("nav.users", "Users", "ユーザー"),
    ("nav.tables", "Tables", "テーブル"),
    ("kind.link", "Link to a record", "レコードへのリンク"),
    ("fields.link", "Links to (table › field to show)", "リンク先（テーブル › 表示するフィールド）"),
    (
        "fields.link_hint",
        "Only for link fields: each record then links to one record of that table and shows its field.",
        "リンク型のみ：各レコードがリンク先テーブルの1件を参照し、そのフィールドを表示します。",
    ),
    ("hint.link", "The number (#) of the linked record", "リンク先レコードの番号（#）"),
    (
        "err.not_with_view",
        "A saved view cannot be combined with other list parameters; only after and limit may be added.",
        "保存したビューには after と limit 以外の一覧パラメーターを組み合わせられません。",
    ),
    ("err.unknown_record", "No such record that you may see.", "参照できるレコードがありません。"),
    ("err.unknown_table", "No such table.", "テーブルがありません。"),
    ("bulk.select", "Select", "選択"),
    ("bulk.select_all", "Select every record on this page", "このページのレコードをすべて選択"),
    ("bulk.title", "With the ticked records", "チェックしたレコードに対して"),
    (
        "bulk.all_matching",
        "Instead: every record matching the current search and filters",
        "代わりに：現在の検索・絞り込みに一致するすべてのレコード",
    ),
    ("bulk.at_most", "at most", "最大"),
    ("bulk.set_field", "Set field", "フィールド"),
    ("bulk.to_value", "to", "の値を"),
    ("bulk.apply", "Apply", "一括変更"),
    ("bulk.delete_confirm", "Yes, delete them", "はい、削除します"),
    ("bulk.delete", "Delete", "一括削除"),
    ("flash.bulk_deleted", "Records deleted.", "レコードを削除しました。"),
    ("flash.record_created", "Record added.", "レコードを追加しました。"),
    ("flash.record_saved", "Record saved.", "レコードを保存しました。"),
    ("flash.record_deleted", "Record deleted.", "レコードを削除しました。"),
    ("flash.field_added", "Field added.", "フィールドを追加しました。"),
    ("flash.bulk_updated", "Records updated.", "レコードを更新しました。"),
    ("err.nothing_selected", "Tick at least one record.", "レコードを1件以上選んでください。"),
    (
        "err.ids_or_query",
        "Give either the records' ids or a query that selects them, not both.",
        "レコードのIDか、レコードを選ぶ条件のどちらか一方を指定してください。",
    ),
    (
        "err.selects_every_record",
        "This query narrows nothing: it would apply to every record. Send all=true to mean that.",
        "この条件では何も絞り込まれず、すべてのレコードが対象になります。その場合は all=true を指定してください。",
    ),
    ("err.unknown_parameter", "This parameter is not known here.", "このパラメーターはここでは使えません。"),
    (
        "err.too_many_records",
        "Too many records at once: narrow the search.",
        "一度に処理できる件数を超えています。条件を絞ってください。",
    ),
    ("history.title", "Change history", "変更履歴"),
    ("history.created", "Created", "作成"),
    ("history.by", "by", "作成者"),
    ("history.none", "No changes since it was created.", "作成後の変更はありません。"),
    ("history.field", "Field", "フィールド"),
    ("history.before", "Before", "変更前"),
    ("history.after", "After", "変更後"),
    ("history.version", "Version", "版"),
    ("tokens.title", "API tokens", "APIトークン"),
    (
        "tokens.intro",
        "A token lets a script use the JSON API as you, with your rights. Keep it secret; revoke it when it is no longer needed.",
        "トークンを使うと、スクリプトがあなたの権限でJSON APIを利用できます。秘密にし、不要になったら無効にしてください。",
    ),
    ("tokens.created", "Token created", "トークンを作成しました"),
    ("tokens.copy_now", "Copy it now: it is not shown again.", "今コピーしてください。二度と表示されません。"),
    ("tokens.usage", "Send it as", "次のように送信します："),
    ("tokens.none", "No tokens yet.", "トークンはまだありません。"),
    ("tokens.name", "Name", "名前"),
    ("tokens.scope", "Scope", "範囲"),
    ("tokens.read", "Read only", "読み取りのみ"),
    ("tokens.read_write", "Read and write", "読み書き"),
    ("tokens.expires", "Expires", "有効期限"),
    ("tokens.last_used", "Last used", "最終使用"),
    ("tokens.active", "Active", "有効"),
    ("tokens.revoked", "Revoked", "無効化済み"),
    ("tokens.expired", "Expired", "期限切れ"),
    ("tokens.revoke", "Revoke", "無効にする"),
    ("tokens.confirm_revoke", "Confirm", "確認"),
    ("tokens.new", "New token", "トークンを作成"),
    ("tokens.days", "Valid for (days, at most 365)", "有効日数（最大365日）"),
    ("tokens.create", "Create token", "作成"),
    ("kind.multi_choice", "Multiple choice", "複数選択"),
    ("kind.auto_number", "Auto-number", "自動採番"),
    ("fields.prefix", "Prefix (auto-number)", "接頭辞（自動採番）"),
    (
        "fields.prefix_hint",
        "Shown before the number, e.g. INV- gives INV-000042.",
        "番号の前に付けます。例: INV- なら INV-000042。",
    ),
    ("fields.default", "Default value", "初期値"),
    (
        "fields.default_hint",
        "A new record gets this value when none is given.",
        "値を指定せずにレコードを作ると、この値になります。",
    ),
    (
        "err.not_with_unique",
        "A unique field cannot have a default value (every record left empty would get the same value).",
        "重複禁止のフィールドには初期値を設定できません（空のまま作ったレコードがすべて同じ値になるため）。",
    ),
    (
        "err.reserved_name",
        "This name is reserved (a field id or a system field such as id or created_at).",
        "この名前は予約されています（フィールド ID、または id・created_at などのシステム項目）。",
    ),
    (
        "err.bad_default",
        "The default value is not a valid value of this field.",
        "初期値がこのフィールドの値として正しくありません。",
    ),
    ("retype.title", "Field settings", "フィールドの設定"),
    ("retype.open", "Settings…", "設定…"),
    ("retype.type_section", "Type and choices", "種類と選択肢"),
    ("retype.rules_section", "Rules", "ルール"),
    ("retype.no_rules", "no rules", "ルールなし"),
    ("rules.required", "Required", "必須"),
    ("rules.unique", "Unique", "重複禁止"),
    ("fields.max_length", "Maximum length (characters)", "最大文字数"),
    (
        "fields.max_length_hint",
        "Only for text fields. Empty: up to 1,000 characters (about 800 in Japanese; 20,000 for multi-line text).",
        "文字列型のみ。空欄なら1,000文字まで（日本語では約800文字。複数行は20,000文字まで）。",
    ),
    ("fields.min", "Minimum", "最小値"),
    ("fields.max", "Maximum", "最大値"),
    (
        "fields.bounds_hint",
        "Only for integer and decimal fields; either may be left empty.",
        "整数・小数型のみ。どちらも空欄にできます。",
    ),
    ("err.min_above_max", "The maximum must not be below the minimum.", "最大値は最小値以上にしてください。"),
    (
        "err.duplicate",
        "Another record has the same value; the unique rule does not allow it.",
        "同じ値のレコードが他にあり、重複禁止のルールに反します。",
    ),
    ("retype.current", "Now", "現在"),
    (
        "retype.hint",
        "Every record's value is checked against the new type and rules, as if typed again. If any value does not fit, nothing is changed and those values are listed here. Check first to see the report without changing anything. A date-time becomes the date it falls on in the tenant's time zone (set in the security policy), and a date the start of its day there.",
        "すべてのレコードの値を、入力し直したものとして新しい種類とルールで確認します。合わない値が一つでもあれば何も変更せず、その値を一覧にします。まず「確認」で、変更せずに結果だけを見られます。日時はテナントのタイムゾーン（セキュリティポリシーで設定）での日付に、日付はそのタイムゾーンでのその日の 0 時になります。",
    ),
    ("retype.all_convert", "Every value fits the new settings.", "すべての値が新しい設定に合います。"),
    ("retype.some_fail", "Values that do not fit (nothing was changed)", "合わない値（何も変更していません）"),
    ("retype.value", "Value", "値"),
    ("retype.reason", "Why", "理由"),
    (
        "retype.rules_dropped",
        "Rules that do not apply to the new type and will be removed",
        "新しい種類には使えないため外れるルール",
    ),
    ("retype.new_type", "Type", "種類"),
    ("retype.check", "Check only", "確認のみ"),
    ("retype.apply", "Save the settings", "設定を保存"),
    (
        "flash.field_retyped",
        "Field settings saved; every value was checked.",
        "フィールドの設定を保存し、すべての値を確認しました。",
    ),
    (
        "err.values_do_not_convert",
        "Some values do not fit the new settings; nothing was changed.",
        "新しい設定に合わない値があるため、何も変更していません。",
    ),
    (
        "err.duplicate_values",
        "After conversion some values are the same, which the unique rule does not allow.",
        "変換後に同じ値が重複し、重複禁止のルールに反します。",
    ),
    ("records.unit", "records", "件"),
    ("records.created", "Created", "作成"),
    ("records.updated", "Last updated", "最終更新"),
    ("records.unit_one", "record", "件"),
    ("records.counted_up_to", "counted up to", "上限"),
    ("design.title", "Design", "設計"),
    ("design.open", "Design…", "設計…"),
    ("design.settings", "Name and description", "名前と説明"),
    ("design.save", "Save", "保存"),
    ("design.fields", "Fields", "フィールド"),
    (
        "design.fields_hint",
        "Rename a field, move it up or down, or delete it. Records keep their values when a field is renamed or moved.",
        "フィールドの名前変更、並べ替え、削除ができます。名前変更や並べ替えでレコードの値は変わりません。",
    ),
    ("design.field_name", "Field name", "フィールド名"),
    ("design.rename", "Rename", "名前を変更"),
    ("design.up", "Move up", "上へ"),
    ("design.down", "Move down", "下へ"),
    ("design.confirm_delete", "Confirm delete", "削除を確認"),
    ("design.delete_field", "Delete", "削除"),
    (
        "design.trash_hint",
        "A deleted field disappears from every page, list, search and export at once; an administrator can restore it from the trash",
        "削除したフィールドはすべての画面・一覧・検索・書き出しから直ちに消えます。管理者はごみ箱から元に戻せます",
    ),
    ("design.days", "days", "日間"),
    ("design.delete_table", "Delete this table", "このテーブルを削除"),
    (
        "design.delete_table_hint",
        "The table and its records go to the trash, from which an administrator can restore them",
        "テーブルとレコードはごみ箱に移り、管理者が元に戻せます",
    ),
    (
        "design.confirm_delete_table",
        "Yes, move this table and all its records to the trash",
        "はい、このテーブルとすべてのレコードをごみ箱に移します",
    ),
    ("flash.saved", "Saved.", "保存しました。"),
    ("flash.field_renamed", "Field renamed.", "フィールド名を変更しました。"),
    ("flash.fields_reordered", "Fields reordered.", "フィールドを並べ替えました。"),
    ("flash.field_deleted", "Field moved to the trash.", "フィールドをごみ箱に移しました。"),
    ("flash.table_deleted", "Table moved to the trash.", "テーブルをごみ箱に移しました。"),
    ("flash.restored", "Restored.", "元に戻しました。"),
    ("flash.purged", "Deleted for good.", "完全に削除しました。"),
    ("trash.title", "Trash", "ごみ箱"),
    ("trash.open", "Trash", "ごみ箱"),
    (
        "trash.hint",
        "Deleted tables and fields stay here with their data until restored, or until they are purged automatically",
        "削除したテーブルとフィールドは、元に戻すか自動で完全削除されるまで、データごとここに残ります",
    ),
    ("trash.empty", "The trash is empty.", "ごみ箱は空です。"),
    ("trash.item", "Item", "項目"),
    ("trash.deleted", "Deleted", "削除日時・削除者"),
    ("trash.purge_after", "Purged after", "完全削除の予定"),
    ("trash.actions", "Actions", "操作"),
    ("trash.table", "Table", "テーブル"),
    ("trash.field", "Field", "フィールド"),
    ("trash.restore", "Restore", "元に戻す"),
    ("trash.confirm_purge", "Yes, delete for good", "完全に削除する"),
    ("trash.purge", "Delete for good", "完全に削除"),
    (
        "err.not_every_field",
        "List every field of the table exactly once.",
        "テーブルのすべてのフィールドを一度ずつ指定してください。",
    ),
    ("views.title", "Views", "ビュー"),
    ("views.all", "All records", "すべてのレコード"),
    ("views.shared", "shared", "共有"),
    ("views.save", "Save this view…", "このビューを保存…"),
    ("views.name", "View name", "ビュー名"),
    ("views.share", "Share with everyone who may view this table", "このテーブルを閲覧できる全員と共有する"),
    ("views.save_button", "Save view", "ビューを保存"),
    ("views.delete", "Delete", "削除"),
    ("flash.view_saved", "View saved.", "ビューを保存しました。"),
    ("flash.view_deleted", "View deleted.", "ビューを削除しました。"),
    ("records.then_by", "Then by", "次に"),
    ("records.filters", "Filters (all must match)", "絞り込み（すべてに一致）"),
    ("records.filter_field", "Filter field", "絞り込む項目"),
    ("records.filter_op", "Condition", "条件"),
    ("records.filter_value", "Value", "値"),
    ("records.columns", "Columns", "表示する列"),
    (
        "records.columns_hint",
        "None ticked shows every column. The export uses the same columns.",
        "何も選ばないとすべての列を表示します。CSV書き出しも同じ列になります。",
    ),
    ("op.contains", "contains", "を含む"),
    ("op.eq", "equals", "と等しい"),
    ("op.starts_with", "starts with", "で始まる"),
    ("op.gte", "at least", "以上"),
    ("op.lte", "at most", "以下"),
    ("op.gt", "greater than", "より大きい"),
    ("op.lt", "less than", "より小さい"),
    ("op.any_of", "any of (comma-separated)", "いずれか（カンマ区切り）"),
    ("op.empty", "is empty", "が空"),
    ("op.not_empty", "is not empty", "が空でない"),
    ("flash.token_revoked", "Token revoked.", "トークンを無効にしました。"),
    ("nav.groups", "Groups & rights", "グループと権限"),
    ("home.groups_hint", "who may do what in which table", "どのテーブルで誰が何をできるか"),
    ("groups.title", "Groups & rights", "グループと権限"),
    (
        "groups.intro",
        "Users get rights on tables through their groups. Nothing is allowed until a group grants it; a user in several groups gets everything any of them grants. A field is shown if a group that reaches all the records a right covers shows it (when the groups reach different records and none reaches all, it is hidden if any of them hides it); it may be changed on a record if a group that reaches that record allows it (and, among the groups that let them view that record, one allows it). Each user's access page shows the result. Administrators hold every right.",
        "ユーザーはグループを通してテーブルの権限を得ます。グループが許可するまで何もできません。複数のグループに属するユーザーは、いずれかのグループで許可された操作ができます。フィールドは、その権限の対象レコードすべてに及ぶグループが表示していれば表示されます（対象レコードが異なり、すべてに及ぶグループがない場合は、どれかが非表示にしていれば非表示）。各レコードでは、そのレコードに及ぶグループが許可していれば変更できます（そのレコードを閲覧できるグループがあれば、そのうちどれかも許可している必要があります）。結果は各ユーザーの権限ページで確認できます。管理者はすべての権限を持ちます。",
    ),
    ("groups.none", "No groups yet.", "グループはまだありません。"),
    ("groups.name", "Group name", "グループ名"),
    ("groups.members", "Members", "メンバー"),
    ("groups.tables", "Tables granted", "権限のあるテーブル"),
    ("groups.new", "New group", "グループを作成"),
    ("groups.create", "Create group", "作成"),
    ("groups.matrix", "Rights per table", "テーブルごとの権限"),
    (
        "groups.matrix_hint",
        "Edit, delete and export take effect only with view, from this group or another of the user's (a group may add edit to what another lets its members view). Field and row limits are set per table.",
        "編集・削除・書き出しは、閲覧（このグループまたはユーザーの他のグループのもの）と組み合わせたときだけ有効です（閲覧は別のグループで与え、編集だけをこのグループで足すこともできます）。フィールドとレコードの制限はテーブルごとに設定します。",
    ),
    ("groups.table", "Table", "テーブル"),
    ("access.some_records", "writable on some records only", "一部のレコードでのみ変更可"),
    ("groups.rows", "Records", "対象レコード"),
    ("groups.fields", "Fields", "フィールド"),
    ("groups.restricted", "fields hidden or read-only", "件のフィールドに制限"),
    ("groups.all_editable", "no field rules", "フィールドの制限なし"),
    ("groups.save_members", "Save members", "メンバーを保存"),
    ("groups.details", "Name and description", "名前と説明"),
    ("groups.delete", "Delete group", "グループを削除"),
    (
        "groups.delete_confirm",
        "Yes, delete this group (its members lose its rights)",
        "はい、削除します（メンバーはこのグループの権限を失います）",
    ),
    (
        "groups.grant_first",
        "Give this group a right on the table first (on the group page).",
        "先にグループのページでこのテーブルの権限を付与してください。",
    ),
    ("groups.rows_hint", "Which records this group's rights apply to.", "このグループの権限が及ぶレコード。"),
    ("groups.field", "Field", "フィールド"),
    ("groups.access", "Access", "アクセス"),
    ("right.view", "View", "閲覧"),
    ("right.create", "Create", "追加"),
    ("right.edit", "Edit", "編集"),
    ("right.delete", "Delete", "削除"),
    ("right.import", "Import", "読み込み"),
    ("right.export", "Export", "書き出し"),
    ("right.design", "Design", "設計"),
    ("rows.all", "All records", "すべてのレコード"),
    ("rows.created_by_me", "Records they created", "自分が作成したレコード"),
    ("rows.user_is_me", "Records assigned to them", "自分が担当のレコード"),
    ("access.title", "What this user may do", "このユーザーができること"),
    ("access.editable", "Editable", "編集可"),
    ("access.read_only", "Read-only", "閲覧のみ"),
    ("access.hidden", "Hidden", "非表示"),
    (
        "access.admin",
        "Administrator: holds every right on every table.",
        "管理者：すべてのテーブルですべての権限を持ちます。",
    ),
    ("access.no_groups", "none", "なし"),
    (
        "access.disabled",
        "This user is disabled: they can do nothing until enabled again, whatever the rights below.",
        "このユーザーは無効です。有効に戻すまで、下の権限にかかわらず何もできません。",
    ),
    ("access.groups", "Groups", "所属グループ"),
    ("access.yes", "allowed", "可"),
    ("access.no", "not allowed", "不可"),
    ("records.read_only", "read-only", "変更不可"),
    ("kind.phone", "Phone", "電話番号"),
    ("kind.user", "User", "ユーザー"),
    ("flash.group_saved", "Group saved.", "グループを保存しました。"),
    ("flash.group_deleted", "Group deleted.", "グループを削除しました。"),
    ("err.read_only", "You may not change this field.", "このフィールドは変更できません。"),
    ("err.unknown_user", "Choose a user of this organisation.", "この組織のユーザーを選んでください。"),
    (
        "err.phone_format",
        "Enter a phone number (digits, spaces, + - ( )).",
        "電話番号を入力してください（数字・空白・+ - ( )）。",
    ),
    ("err.not_a_user_field", "Choose a user field.", "ユーザーフィールドを選んでください。"),
    (
        "err.grant_rights_first",
        "Give the group a right on this table first.",
        "先にこのテーブルの権限を付与してください。",
    ),
    ("tables.title", "Tables", "テーブル"),
    (
        "tables.none",
        "No tables yet. Create the first one.",
        "テーブルはまだありません。最初のテーブルを作成してください。",
    ),
    ("tables.name", "Name", "名前"),
    ("tables.description", "Description", "説明"),
    ("tables.fields", "Fields", "フィールド数"),
    ("tables.new", "New table", "新しいテーブル"),
    ("tables.create", "Create table", "テーブルを作成"),
    (
        "tables.no_fields",
        "This table has no fields yet. Add the first field below.",
        "このテーブルにはまだフィールドがありません。下から最初のフィールドを追加してください。",
    ),
    ("fields.add", "Add field", "フィールドを追加"),
    ("fields.name", "Field name", "フィールド名"),
    ("fields.type", "Type", "種類"),
    ("fields.choices", "Choices", "選択肢"),
    ("fields.choices_hint", "For a choice field: one choice per line.", "選択肢フィールドの場合：1行に1つ。"),
    ("fields.scale", "Decimal places", "小数点以下の桁数"),
    ("fields.required", "Required", "必須"),
    ("fields.unique", "Unique (no two records with the same value)", "重複禁止（同じ値のレコードを許さない）"),
    ("kind.text", "Single-line text", "文字列（1行）"),
    ("kind.multiline", "Multi-line text", "文字列（複数行）"),
    ("kind.integer", "Integer", "整数"),
    ("kind.decimal", "Decimal", "小数"),
    ("kind.date", "Date", "日付"),
    ("kind.date_time", "Date and time", "日時"),
    ("kind.checkbox", "Checkbox", "チェックボックス"),
    ("kind.choice", "Choice", "選択肢"),
    ("kind.email", "E-mail", "メールアドレス"),
    ("kind.url", "Web address", "URL"),
    (
        "hint.date_time",
        "Format: 2026-04-01 09:30 (your organisation's time zone)",
        "形式: 2026-04-01 09:30（組織のタイムゾーン）",
    ),
    ("hint.date", "Format: 2026-04-01", "形式: 2026-04-01"),
    ("records.new", "New record", "レコードを追加"),
    ("records.edit", "Record", "レコード"),
    ("records.none", "No records to show.", "表示するレコードはありません。"),
    ("records.more", "Next page", "次のページ"),
    ("records.first", "First page", "最初のページ"),
    ("records.previous", "Previous page", "前のページ"),
    ("records.export", "Export CSV", "CSVエクスポート"),
    ("import.title", "Import CSV", "CSV読み込み"),
    (
        "import.intro",
        "The first row names the fields (as in an export). Every row is checked first; if any row has a problem, nothing is imported and each problem is listed.",
        "1行目はフィールド名です（エクスポートと同じ形式）。すべての行を先に確認し、1行でも問題があれば何も読み込まず、問題を一覧にします。",
    ),
    ("import.map_title", "Which field gets each column?", "各列をどのフィールドに読み込みますか"),
    (
        "import.map_intro",
        "Some column names of the file are not field names. Choose a field for each column, or leave a column out. Nothing is imported until you confirm; the file is kept for an hour meanwhile.",
        "ファイルの列名にフィールド名と一致しないものがあります。列ごとに読み込むフィールドを選ぶか、読み込まない列を指定してください。確定するまで何も読み込みません（ファイルはその間1時間保管します）。",
    ),
    ("import.column", "Column in the file", "ファイルの列"),
    ("import.examples", "First values", "先頭の値"),
    ("import.to_field", "Field", "フィールド"),
    ("import.skip_column", "(do not import)", "（読み込まない）"),
    ("import.no_header", "column", "列"),
    ("import.columns", "Columns", "列の対応"),
    ("import.again", "Choose another file", "別のファイルを選ぶ"),
    (
        "import.first_problems",
        "Only the first 100 problems are listed; the file may hold more.",
        "最初の100件の問題だけを表示しています。ほかにもある場合があります。",
    ),
    (
        "err.changed_since_export",
        "This record was changed after the file was exported (its \"updated at\" is later); export it again, or leave the column out to overwrite it.",
        "ファイルの書き出し後にこのレコードが変更されています（更新日時が新しい）。書き出し直すか、上書きする場合は更新日時の列を外してください。",
    ),
    (
        "err.no_column_for_required",
        "The file has no column for this required field.",
        "この必須フィールドに対応する列がファイルにありません。",
    ),
    (
        "err.selection_changed",
        "The records matching have changed since the page was shown; nothing was changed. Look at the list again, then repeat.",
        "ページ表示後に該当するレコードが変わりました。何も変更していません。一覧を確認してからもう一度実行してください。",
    ),
    (
        "err.broken_utf8",
        "The file is UTF-8 but holds a byte that is not; fix the file, or choose its encoding.",
        "ファイルは UTF-8 ですが、UTF-8 でないバイトを含んでいます。ファイルを直すか、文字コードを選んでください。",
    ),
    (
        "err.staged_taken",
        "This file was imported already (the form was sent twice); nothing more was written.",
        "このファイルは取り込み済みです（フォームが2回送信されました）。追加では何も書き込まれていません。",
    ),
    (
        "err.staged_expired",
        "The uploaded file is no longer kept (after an hour, or for another user). Choose it again.",
        "アップロードしたファイルは保管されていません（1時間経過したか、別のユーザーのものです）。もう一度選んでください。",
    ),
    (
        "err.required_unwritable",
        "A required field that you may not fill has no default value, so you cannot add records to this table. Ask an administrator.",
        "入力できない必須項目に既定値がないため、このテーブルにはレコードを追加できません。管理者に連絡してください。",
    ),
    (
        "err.not_editable",
        "You may not edit this record (it would be updated by its key).",
        "このレコードは編集できません（キーで更新されるレコードです）。",
    ),
    (
        "err.needs_all_records",
        "Changing a field's settings checks every record: it needs the right to view all records of the table.",
        "フィールドの設定変更はすべてのレコードを確認するため、テーブルの全レコードを閲覧する権限が必要です。",
    ),
    ("err.mapping_mismatch", "The choices do not match the file's columns.", "選択がファイルの列と一致しません。"),
    (
        "err.nothing_mapped",
        "Choose a field for at least one column.",
        "少なくとも1つの列にフィールドを選んでください。",
    ),
    (
        "import.limits",
        "At most 100,000 rows and 300 columns per file; largest file",
        "1ファイル100,000行・300列まで。ファイルサイズの上限",
    ),
    ("err.too_many_columns", "The file has more than 300 columns.", "ファイルの列が300を超えています。"),
    (
        "import.refused",
        "Nothing was imported. Correct these rows and try again:",
        "何も読み込んでいません。次の行を修正して、もう一度お試しください：",
    ),
    ("import.file", "CSV file", "CSVファイル"),
    ("import.encoding", "Character encoding", "文字コード"),
    ("import.auto", "Detect (UTF-8 or Shift_JIS)", "自動判別（UTF-8 または Shift_JIS）"),
    ("import.key", "Update existing records by", "既存レコードの更新に使うキー"),
    ("import.no_key", "Always add new records", "常に新しいレコードとして追加"),
    ("import.submit", "Import", "読み込む"),
    ("import.row", "Row", "行"),
    ("records.export_sjis", "CSV for Excel (Shift_JIS)", "Excel用CSV（Shift_JIS）"),
    ("records.search", "Keyword", "キーワード"),
    ("records.sort", "Sort by", "並べ替え"),
    ("records.sort_newest", "Record number", "レコード番号"),
    ("records.direction", "Order", "順序"),
    ("records.asc", "Ascending", "昇順"),
    ("records.default_order", "Default", "既定"),
    ("records.desc", "Descending", "降順"),
    ("records.delete", "Delete record", "レコードを削除"),
    ("records.delete_confirm", "Yes, delete this record", "はい、削除します"),
    ("nav.policy", "Security policy", "セキュリティポリシー"),
    ("nav.audit", "Operation history", "操作履歴"),
    ("nav.account", "Your account", "アカウント"),
    ("nav.logout", "Sign out", "ログアウト"),
    ("footer.request", "Request", "リクエスト"),
    ("form.has_errors", "Please correct the following:", "次の点を修正してください。"),
    ("action.save", "Save", "保存"),
    ("action.cancel", "Cancel", "キャンセル"),
    ("action.done", "Done", "完了"),
    ("action.edit", "Edit", "編集"),
    ("action.actions", "Actions", "操作"),
    ("field.tenant", "Tenant code", "テナントコード"),
    ("field.tenant_name", "Tenant", "テナント"),
    ("field.login_id", "Login ID", "ログインID"),
    ("field.password", "Password", "パスワード"),
    ("field.display_name", "Name", "氏名"),
    ("field.email", "E-mail", "メールアドレス"),
    ("field.role", "Role", "ロール"),
    ("field.status", "Status", "状態"),
    ("field.language", "Language", "表示言語"),
    ("field.current_password", "Current password", "現在のパスワード"),
    ("field.new_password", "New password", "新しいパスワード"),
    ("field.confirm_password", "New password again", "新しいパスワード（確認）"),
    ("role.tenant_admin", "Tenant administrator", "テナント管理者"),
    ("role.member", "Member", "メンバー"),
    ("status.active", "Active", "有効"),
    ("status.disabled", "Disabled", "無効"),
    ("status.locked", "Locked", "ロック中"),
    ("lang.auto", "Browser setting", "ブラウザーの設定"),
    ("lang.en", "English", "English"),
    ("lang.ja", "日本語", "日本語"),
    ("outcome.success", "Success", "成功"),
    ("outcome.failure", "Failure", "失敗"),
    ("outcome.denied", "Denied", "拒否"),
    ("login.title", "Sign in to Daicho", "Daicho にログイン"),
    ("login.submit", "Sign in", "ログイン"),
    (
        "login.failed",
        "The tenant code, login ID or password is not correct, or the account cannot sign in now.",
        "テナントコード、ログインID、パスワードのいずれかが正しくないか、現在このアカウントではログインできません。",
    ),
    (
        "login.throttled",
        "Too many failed sign-ins from your network. Please wait a few minutes and try again.",
        "お使いのネットワークからのログイン失敗が多すぎます。数分待ってから再度お試しください。",
    ),
    (
        "login.reason_idle",
        "You were signed out because the session was idle for too long.",
        "一定時間操作がなかったため、ログアウトしました。",
    ),
    (
        "login.reason_absolute",
        "Your session reached its maximum length. Please sign in again.",
        "セッションの有効期間が終了しました。再度ログインしてください。",
    ),
    ("login.reason_disabled", "Your session has ended.", "セッションは終了しました。"),
    ("login.reason_logged_out", "You have signed out.", "ログアウトしました。"),
    (
        "login.reason_password_changed",
        "Your password was changed. Please sign in with the new password.",
        "パスワードを変更しました。新しいパスワードでログインしてください。",
    ),
    ("home.welcome", "Welcome, {name}", "ようこそ、{name} さん"),
    ("home.you", "Your sign-in", "ログイン情報"),
    ("home.signed_in_at", "Signed in at", "ログイン日時"),
    ("home.manage_account", "Password, language and sessions", "パスワード・表示言語・セッションの管理"),
    ("home.admin", "Administration", "管理"),
    ("home.users_hint", "add, disable and reset users", "ユーザーの追加・無効化・パスワード再設定"),
    ("home.policy_hint", "passwords, lockout and session limits", "パスワード・ロックアウト・セッションの設定"),
    ("home.audit_hint", "who did what, when and from where", "誰が・いつ・どこから・何をしたか"),
    ("account.title", "Your account", "アカウント"),
    ("account.profile", "Profile", "プロフィール"),
    ("account.password_changed", "Password last changed", "パスワード最終変更日時"),
    ("account.change_password", "Change password", "パスワードを変更"),
    ("account.language", "Display language", "表示言語"),
    ("account.sessions", "Active sessions", "ログイン中のセッション"),
    (
        "account.sessions_hint",
        "Every browser signed in to your account. End any session you do not recognise, then change your password.",
        "あなたのアカウントでログインしているブラウザーの一覧です。心当たりのないセッションは終了し、パスワードを変更してください。",
    ),
    ("session.started", "Signed in", "ログイン日時"),
    ("session.last_seen", "Last used", "最終利用"),
    ("session.ip", "IP address", "IPアドレス"),
    ("session.browser", "Browser", "ブラウザー"),
    ("session.current", "This browser", "このブラウザー"),
    ("session.end", "End session", "終了する"),
    ("password.title", "Change password", "パスワードの変更"),
    (
        "password.forced",
        "You must set a new password before continuing.",
        "続行する前に新しいパスワードを設定してください。",
    ),
    ("password.submit", "Change password", "変更する"),
    (
        "password.hint",
        "At least {min} characters. It must not contain your login ID, be a common password, or repeat one of your last {history} passwords.",
        "{min}文字以上。ログインIDを含むもの、よく使われるもの、直近{history}回に使ったものは使えません。",
    ),
    (
        "banner.password_expires",
        "Your password expires in {days} day(s). Please change it from your account page.",
        "パスワードの有効期限まであと{days}日です。アカウント画面から変更してください。",
    ),
    ("users.title", "Users", "ユーザー"),
    ("users.new", "New user", "ユーザーを追加"),
    ("users.new_title", "New user", "ユーザーの追加"),
    ("users.edit_title", "Edit user", "ユーザーの編集"),
    ("users.count", "users", "人"),
    ("users.must_change", "Must change password", "パスワード変更待ち"),
    (
        "users.login_id_hint",
        "Letters, digits and . _ - @ only. It cannot be changed later.",
        "半角英数字と . _ - @ のみ。後から変更できません。",
    ),
    ("users.details", "Details", "詳細"),
    ("users.failed_logins", "Failed sign-ins in a row", "連続ログイン失敗回数"),
    ("users.created", "Created", "作成日時"),
    ("users.actions", "Account actions", "アカウント操作"),
    (
        "users.actions_hint",
        "Disabling, resetting the password or deleting ends all of the user's sessions at once.",
        "無効化・パスワード再設定・削除を行うと、そのユーザーのセッションはすべて直ちに終了します。",
    ),
    (
        "users.self_hint",
        "You cannot disable, reset or delete your own account here.",
        "自分自身のアカウントはここで無効化・再設定・削除できません。",
    ),
    ("users.unlock", "Unlock", "ロック解除"),
    ("users.reset_password", "Reset password", "パスワード再設定"),
    ("users.disable", "Disable", "無効にする"),
    ("users.enable", "Enable", "有効にする"),
    ("users.delete", "Delete user", "ユーザーを削除"),
    ("users.delete_title", "Delete this user?", "このユーザーを削除しますか？"),
    (
        "users.delete_warning",
        "The user's account, sessions and password history are removed. Their entries in the operation history stay.",
        "アカウント、セッション、パスワード履歴が削除されます。操作履歴の記録は残ります。",
    ),
    ("users.delete_confirm", "Yes, delete this user", "はい、削除します"),
    ("otp.created_title", "User created", "ユーザーを作成しました"),
    ("otp.reset_title", "Password reset", "パスワードを再設定しました"),
    (
        "otp.explain",
        "Give the user these sign-in details through a safe channel. They must choose a new password at their first sign-in.",
        "以下のログイン情報を安全な方法で本人に伝えてください。初回ログイン時に新しいパスワードの設定が必要です。",
    ),
    ("otp.password", "One-time password", "初期パスワード"),
    (
        "otp.once",
        "This password is shown only once and is not stored in readable form.",
        "このパスワードは一度だけ表示され、読める形では保存されません。",
    ),
    ("policy.title", "Security policy", "セキュリティポリシー"),
    (
        "policy.intro",
        "These rules apply to every user of this tenant. Changes take effect at once and are recorded in the operation history.",
        "このテナントのすべてのユーザーに適用されます。変更は即時に反映され、操作履歴に記録されます。",
    ),
    ("policy.group_passwords", "Passwords", "パスワード"),
    ("policy.group_lockout", "Lockout", "ロックアウト"),
    ("policy.group_sessions", "Sessions", "セッション"),
    ("policy.password_min_length", "Minimum length", "最小文字数"),
    ("policy.password_min_length_hint", "characters", "文字"),
    ("policy.password_history", "Passwords remembered", "再利用を禁止する世代数"),
    (
        "policy.password_history_hint",
        "previous passwords that may not be reused",
        "過去のパスワードを再利用できない世代数",
    ),
    ("policy.password_max_age_days", "Password expiry", "パスワードの有効期限"),
    ("policy.password_max_age_days_hint", "days; 0 = never", "日（0 = 無期限）"),
    ("policy.password_expiry_warning_days", "Warn before expiry", "期限切れ前の警告"),
    ("policy.password_expiry_warning_days_hint", "days", "日"),
    ("policy.lockout_threshold", "Failed sign-ins before lockout", "ロックまでのログイン失敗回数"),
    ("policy.lockout_threshold_hint", "in a row", "連続"),
    ("policy.lockout_minutes", "Lockout duration", "ロック時間"),
    ("policy.lockout_minutes_hint", "minutes", "分"),
    ("policy.idle_timeout_minutes", "Idle timeout", "無操作タイムアウト"),
    ("policy.idle_timeout_minutes_hint", "minutes without activity", "分（操作がない時間）"),
    ("policy.absolute_timeout_hours", "Maximum session length", "セッションの最長時間"),
    ("policy.absolute_timeout_hours_hint", "hours after sign-in", "時間（ログインからの経過）"),
    ("policy.group_network", "Network", "ネットワーク"),
    ("policy.ip_allowlist", "Allowed networks", "接続を許可するネットワーク"),
    (
        "policy.ip_allowlist_hint",
        "One address or CIDR range per line, e.g. 203.0.113.0/24. Leave empty to allow any network. Sign-ins and requests from elsewhere are refused and recorded.",
        "1行に1つ、IPアドレスまたはCIDR（例: 203.0.113.0/24）。空欄ならすべてのネットワークを許可します。それ以外からのログインと操作は拒否され、記録されます。",
    ),
    ("policy.your_ip", "Your address now:", "現在のあなたのアドレス:"),
    ("audit.title", "Operation history", "操作履歴"),
    ("audit.export", "Export CSV", "CSVエクスポート"),
    (
        "audit.chain_ok",
        "Integrity check passed: the history is complete and unmodified.",
        "改ざん検知：履歴は欠落・改変なく完全です。",
    ),
    (
        "audit.chain_broken",
        "Integrity check FAILED: the history has been modified at event",
        "改ざん検知：次のイベントで履歴の改変が検出されました",
    ),
    ("audit.events_checked", "events checked", "件を検証"),
    ("audit.verify", "Check integrity now", "改ざん検知を実行"),
    (
        "audit.verify_hint",
        "Reads every event of the history and checks its hash chain.",
        "すべての履歴を読み、ハッシュの連鎖を検証します。",
    ),
    ("audit.user", "User", "ユーザー"),
    ("audit.action", "Operation", "操作"),
    ("audit.outcome", "Outcome", "結果"),
    ("audit.ip", "IP address", "IPアドレス"),
    ("audit.from", "From", "開始日"),
    ("audit.to", "To", "終了日"),
    ("audit.any", "Any", "すべて"),
    ("audit.search", "Search", "検索"),
    ("audit.clear", "Clear", "クリア"),
    ("audit.when", "When", "日時"),
    ("audit.target", "Target", "対象"),
    ("audit.details", "Details", "詳細"),
    ("audit.none", "No operations match.", "該当する操作はありません。"),
    ("audit.older", "Older operations", "さらに古い操作"),
    (
        "flash.password_changed",
        "Your password has been changed. Your other sessions were ended.",
        "パスワードを変更しました。他のセッションは終了しました。",
    ),
    ("flash.language_saved", "Language saved.", "表示言語を保存しました。"),
    ("flash.session_ended", "The session was ended.", "セッションを終了しました。"),
    ("flash.user_saved", "User saved.", "ユーザーを保存しました。"),
    (
        "flash.user_disabled",
        "User disabled; their sessions were ended.",
        "ユーザーを無効にし、セッションを終了しました。",
    ),
    ("flash.user_enabled", "User enabled.", "ユーザーを有効にしました。"),
    ("flash.user_deleted", "User deleted.", "ユーザーを削除しました。"),
    ("flash.user_unlocked", "User unlocked.", "ロックを解除しました。"),
    ("flash.imported", "The file was imported.", "ファイルを読み込みました。"),
    ("bulk.refused", "Nothing was changed:", "何も変更していません:"),
    ("bulk.to_form", "To the form", "フォームへ"),
    ("flash.import_counts", "{inserted} added, {updated} updated.", "追加 {inserted} 件、更新 {updated} 件。"),
    (
        "flash.import_unchanged",
        "{unchanged} rows held what their records hold, and changed nothing.",
        "{unchanged} 行はレコードと同じ内容で、変更はありませんでした。",
    ),
    ("flash.policy_saved", "Security policy saved.", "セキュリティポリシーを保存しました。"),
    ("policy.group_display", "Display", "表示"),
    ("policy.utc_offset_minutes", "Time zone of the times pages show", "画面に表示する時刻のタイムゾーン"),
    (
        "policy.utc_offset_minutes_hint",
        "Japan is UTC+09:00. Times are kept in UTC; the API and CSV files give them in UTC.",
        "日本は UTC+09:00 です。時刻は UTC で保存され、API と CSV では UTC で表されます。",
    ),
    (
        "error.request_id",
        "If you contact support, quote this request id:",
        "お問い合わせの際は、このリクエストIDをお伝えください：",
    ),
    ("error.back_home", "Back to the start page", "トップページへ戻る"),
    ("error.generic.title", "Something went wrong", "エラーが発生しました"),
    ("error.generic.message", "The request could not be completed.", "リクエストを完了できませんでした。"),
    ("error.unauthenticated.title", "Please sign in", "ログインしてください"),
    ("error.unauthenticated.message", "You need to sign in to do this.", "この操作にはログインが必要です。"),
    ("error.password_change_required.title", "Password change required", "パスワードの変更が必要です"),
    (
        "error.password_change_required.message",
        "Change your password before continuing.",
        "続行する前にパスワードを変更してください。",
    ),
    ("error.forbidden.title", "Not allowed", "権限がありません"),
    (
        "error.forbidden.message",
        "Your account is not allowed to do this. The attempt was recorded.",
        "この操作を行う権限がありません。この試行は記録されました。",
    ),
    ("error.csrf.title", "Form expired", "フォームの有効期限切れ"),
    (
        "error.csrf.message",
        "The form was not sent from this session. Reload the page and try again.",
        "このセッションから送信されたフォームではありません。ページを再読み込みしてやり直してください。",
    ),
    ("error.cross_origin.title", "Request refused", "リクエストを拒否しました"),
    ("error.cross_origin.message", "The request came from another site.", "他のサイトからのリクエストです。"),
    ("error.bad_host.title", "Unknown host", "不明なホスト"),
    (
        "error.bad_host.message",
        "This server does not answer for that host name.",
        "このサーバーはそのホスト名では応答しません。",
    ),
    ("error.bad_encoding.title", "Unreadable text", "読み取れない文字"),
    (
        "error.bad_encoding.message",
        "The form or address holds text that is not UTF-8. Nothing was saved. Send it again from the page.",
        "フォームまたはアドレスに UTF-8 ではない文字が含まれています。何も保存していません。ページから送信し直してください。",
    ),
    ("error.headers_too_large.title", "Request headers too large", "リクエストヘッダーが大きすぎます"),
    (
        "error.headers_too_large.message",
        "The request headers exceed the allowed size.",
        "リクエストヘッダーが上限を超えています。",
    ),
    ("error.not_found.title", "Not found", "見つかりません"),
    (
        "error.not_found.message",
        "There is nothing here, or it is not yours to see.",
        "ページが存在しないか、閲覧できません。",
    ),
    ("error.bad_request.title", "Bad request", "不正なリクエスト"),
    ("error.bad_request.message", "The request could not be understood.", "リクエストを解釈できませんでした。"),
    ("error.invalid_json.title", "Malformed JSON", "JSONの形式が正しくありません"),
    (
        "error.invalid_json.message",
        "The JSON body does not parse or does not have the documented shape.",
        "JSON本文を解析できないか、所定の形式ではありません。",
    ),
    ("error.invalid.title", "Invalid input", "入力内容に誤りがあります"),
    ("error.invalid.message", "Some values are not valid.", "一部の値が正しくありません。"),
    ("error.conflict.title", "Conflict", "競合"),
    ("error.conflict.message", "The value is already in use.", "その値は既に使われています。"),
    ("error.too_many_requests.title", "Too many requests", "リクエストが多すぎます"),
    (
        "error.too_many_requests.message",
        "Please wait a moment and try again.",
        "しばらく待ってから再度お試しください。",
    ),
    ("error.payload_too_large.title", "Request too large", "リクエストが大きすぎます"),
    (
        "error.payload_too_large.message",
        "The request body exceeds the allowed size.",
        "リクエスト本文が上限を超えています。",
    ),
    ("error.method_not_allowed.title", "Method not allowed", "許可されていないメソッド"),
    (
        "error.method_not_allowed.message",
        "This address does not accept that kind of request.",
        "このアドレスはその種類のリクエストを受け付けません。",
    ),
    ("error.unsupported_media_type.title", "Unsupported content type", "未対応の形式"),
    (
        "error.unsupported_media_type.message",
        "Send the request body in the documented format.",
        "リクエスト本文を所定の形式で送信してください。",
    ),
    ("error.unavailable.title", "Temporarily unavailable", "一時的に利用できません"),
    (
        "error.unavailable.message",
        "The service is busy. Please try again shortly.",
        "サービスが混み合っています。しばらくしてから再度お試しください。",
    ),
    ("error.internal.title", "Something went wrong", "エラーが発生しました"),
    (
        "error.internal.message",
        "An unexpected error occurred. It has been logged.",
        "予期しないエラーが発生しました。記録されています。",
    ),
    ("err.required", "This field is required.", "必須項目です。"),
    ("err.too_long", "This value is too long.", "長すぎます。"),
    (
        "err.not_storable",
        "This value cannot be stored: it holds a character or a length the database refuses.",
        "この値は保存できません。データベースが受け付けない文字または長さを含んでいます。",
    ),
    ("err.login_id_chars", "Use only letters, digits and . _ - @.", "半角英数字と . _ - @ のみ使用できます。"),
    (
        "err.control_chars",
        "Control characters and invisible formatting characters (such as text direction overrides) are not allowed.",
        "制御文字や見えない書式文字（文字の向きを変える文字など）は使用できません。",
    ),
    (
        "err.email_format",
        "Enter an e-mail address such as name@example.jp.",
        "name@example.jp のような形式で入力してください。",
    ),
    ("err.choice", "Choose one of the offered values.", "選択肢から選んでください。"),
    ("err.tenant_code_length", "A tenant code has 2 to 32 characters.", "テナントコードは2〜32文字です。"),
    (
        "err.tenant_code_chars",
        "Use lower-case letters, digits and hyphens.",
        "半角英小文字・数字・ハイフンのみ使用できます。",
    ),
    ("err.out_of_range", "The value is outside the allowed range.", "許容範囲外の値です。"),
    ("err.not_a_number", "Enter a whole number.", "整数で入力してください。"),
    (
        "err.password_too_short",
        "The password is shorter than the policy allows.",
        "パスワードがポリシーの最小文字数より短いです。",
    ),
    (
        "err.password_too_long",
        "The password is too long (at most 256 characters).",
        "パスワードが長すぎます（256文字まで）。",
    ),
    (
        "err.password_contains_login",
        "The password must not contain your login ID.",
        "パスワードにログインIDを含めることはできません。",
    ),
    (
        "err.password_common",
        "This password is too common; choose another.",
        "よく使われるパスワードのため使用できません。",
    ),
    (
        "err.password_reused",
        "This password was used recently; choose another.",
        "最近使用したパスワードは使用できません。",
    ),
    ("err.wrong_password", "The current password is not correct.", "現在のパスワードが正しくありません。"),
    ("err.mismatch", "The two new passwords differ.", "新しいパスワードが一致しません。"),
    ("err.taken", "This value is already in use.", "既に使われています。"),
    ("err.confirm_required", "Tick the box to confirm.", "確認のチェックを入れてください。"),
    ("err.bad_date", "Enter a date as YYYY-MM-DD.", "YYYY-MM-DD 形式で入力してください。"),
    ("err.no_such_date", "There is no such date.", "存在しない日付です。"),
    ("err.bad_ip", "Enter an IP address.", "IPアドレスを入力してください。"),
    ("err.cannot_change_self", "You cannot do this to your own account.", "自分自身のアカウントには実行できません。"),
    ("err.unknown", "This value is not valid.", "値が正しくありません。"),
    (
        "err.changed_meanwhile",
        "Someone changed these rights meanwhile, so nothing was saved. They are shown as they are now; make your change again.",
        "その間に他の人が権限を変更したため、保存していません。現在の権限を表示していますので、もう一度変更してください。",
    ),
    (
        "err.bad_csv",
        "This line is not valid CSV (check its quotes); nothing was imported.",
        "CSVとして読めない行です（引用符を確認してください）。何も取り込まれていません。",
    ),
    (
        "err.must_be_you",
        "Records you add here must have you in this field: your rights cover only such records.",
        "ここで追加するレコードは、このフィールドを自分にする必要があります（権限の対象がそのようなレコードだけのため）。",
    ),
    (
        "err.unclosed_quote",
        "A cell in quotes begins in this row and is never closed (a \" is missing); nothing was imported.",
        "この行で \" で始まるセルが閉じられていません（\" が足りません）。何も取り込まれていません。",
    ),
    (
        "err.key_not_in_file",
        "The file has no column for the key field, so no record could be found to update; nothing was imported.",
        "ファイルにキーのフィールドの列がないため、更新するレコードを探せません。何も取り込まれていません。",
    ),
    (
        "err.no_such_record",
        "The table has no record with this number (it may have been deleted); nothing was imported.",
        "この番号のレコードはありません（削除された可能性があります）。何も取り込まれていません。",
    ),
    (
        "err.ragged_row",
        "This row has a different number of columns from the header; nothing was imported.",
        "この行の列の数が見出し行と違います。何も取り込まれていません。",
    ),
    (
        "err.bad_encoding",
        "The file is not in the chosen character encoding (UTF-8 or Shift_JIS); nothing was imported.",
        "ファイルが選んだ文字コード（UTF-8 または Shift_JIS）ではありません。何も取り込まれていません。",
    ),
    (
        "err.duplicate_column",
        "Two columns name the same field; keep one of them.",
        "同じフィールドを指す列が2つあります。どちらか一方にしてください。",
    ),
    (
        "err.duplicate_in_file",
        "An earlier row of the file has this value too, and the field takes each value once.",
        "ファイルの前の行にも同じ値があります。このフィールドには同じ値を1回しか入れられません。",
    ),
    (
        "err.duplicate_key",
        "This key value appears in an earlier row of the file too.",
        "このキーの値はファイルの前の行にもあります。",
    ),
    (
        "err.key_not_unique",
        "The key must be a field with the unique rule (or a record number).",
        "キーには重複禁止のフィールド（またはレコード番号）を選んでください。",
    ),
    (
        "err.too_many_rows",
        "The file has more rows than one import takes (100,000); split it.",
        "1回で取り込める行数（100,000行）を超えています。ファイルを分けてください。",
    ),
    ("err.keyword_too_short", "Search with at least two characters.", "2文字以上で検索してください。"),
    (
        "err.bad_operator",
        "This condition cannot be used with this type of field (\"contains\" and \"starts with\" are for text, \"at least\", \"at most\" and the like for numbers and dates).",
        "この種類の項目には使えない絞り込み条件です（「を含む」「で始まる」は文字列、「以上」「以下」などは数値と日付に使えます）。",
    ),
    (
        "err.bad_cursor",
        "This page position belongs to another list order; start from the first page.",
        "このページ位置は別の並び順のものです。最初のページから開いてください。",
    ),
    (
        "err.bad_cidr",
        "Enter one IP address or CIDR range per line, such as 192.0.2.0/24.",
        "1行に1つ、192.0.2.0/24 のようなIPアドレスまたはCIDRを入力してください。",
    ),
    (
        "err.would_lock_out",
        "This list does not include your own address, so it would lock you out.",
        "このリストにはあなた自身のアドレスが含まれていないため、自分を締め出してしまいます。",
    ),
    ("err.too_many", "Too many entries.", "項目が多すぎます。"),
    (
        "limit.tables",
        "A tenant may have at most 500 tables, those in the trash included. Empty the trash or delete a table first.",
        "テーブルはごみ箱の中のものも含めて 500 個までです。先にごみ箱を空にするか、テーブルを削除してください。",
    ),
    (
        "limit.fields",
        "A table may have at most 200 fields, those in the trash included. Empty the trash or delete a field first.",
        "フィールドはごみ箱の中のものも含めて 200 個までです。先にごみ箱を空にするか、フィールドを削除してください。",
    ),
    (
        "err.column_limit",
        "This table cannot take more fields: its fields were added and deleted too many times. Create a new table and import its records into it.",
        "このテーブルにはこれ以上フィールドを追加できません（フィールドの追加と削除が多すぎました）。新しいテーブルを作成してレコードを取り込んでください。",
    ),
    (
        "err.stale",
        "Someone saved this record after you opened it. Reload it to see their change, then edit again.",
        "開いた後に他の人がこのレコードを保存しました。再読み込みして変更を確認してから、もう一度編集してください。",
    ),
    (
        "err.design_changed",
        "The table's design changed while this was being saved, so nothing was saved. Reload the page and try again.",
        "保存中にテーブルの設計が変更されたため、保存していません。ページを再読み込みしてやり直してください。",
    ),
    (
        "err.not_a_decimal",
        "Enter a number with at most the allowed decimal places.",
        "許可された小数点以下の桁数までの数値を入力してください。",
    ),
    (
        "err.bad_datetime",
        "Enter a date and time such as 2026-04-01 09:30.",
        "2026-04-01 09:30 のような日時を入力してください。",
    ),
    (
        "err.url_format",
        "Enter a web address starting with https:// or http://.",
        "https:// または http:// で始まるURLを入力してください。",
    ),
    ("err.below_min", "The value is below the minimum.", "最小値より小さい値です。"),
    ("err.above_max", "The value is above the maximum.", "最大値より大きい値です。"),
    ("err.wrong_type", "This kind of value does not fit the field.", "このフィールドに合わない種類の値です。"),
    (
        "err.not_a_checkbox",
        "Enter TRUE or FALSE (also ✓, yes or no).",
        "TRUE か FALSE を入力してください（✓、はい、いいえ も使えます）。",
    ),
    ("err.unknown_field", "There is no such field.", "そのようなフィールドはありません。"),
    (
        "err.bad_choice",
        "A choice is empty, too long or has control characters.",
        "空・長すぎる・制御文字を含む選択肢があります。",
    ),
    ("err.duplicate_choice", "Each choice must appear once.", "同じ選択肢が重複しています。"),
    (
        "err.named_twice",
        "This field is given twice, by its id and by its name; give it once.",
        "このフィールドが ID と名前で2回指定されています。1回にしてください。",
    ),
    ("err.not_for_this_type", "This rule does not apply to this type.", "この種類には設定できません。"),
    ("error.ip_not_allowed.title", "Network not allowed", "許可されていないネットワーク"),
    (
        "error.ip_not_allowed.message",
        "Your organisation allows Daicho only from its own networks. The attempt was recorded.",
        "所属組織の設定により、このネットワークからは利用できません。この試行は記録されました。",
    ),
];

static TABLE: LazyLock<HashMap<&'static str, (&'static str, &'static str)>> =
    LazyLock::new(|| MESSAGES.iter().map(|(k, en, ja)| (*k, (*en, *ja))).collect());

/// The message for `key`; an unknown key yields the key itself (and a test keeps that from
/// happening in shipped templates).
pub fn t(lang: Lang, key: &str) -> &'static str {
    match TABLE.get(key) {
        Some((en, ja)) => match lang {
            Lang::En => en,
            Lang::Ja => ja,
        },
        None => match TABLE.get("err.unknown") {
            Some(_) if key.starts_with("err.") => t(lang, "err.unknown"),
            _ => "…",
        },
    }
}

pub fn has_key(key: &str) -> bool {
    TABLE.contains_key(key)
}

pub fn error_message(lang: Lang, code: &str) -> &'static str {
    let key = format!("err.{code}");
    if has_key(&key) { t(lang, &key) } else { t(lang, "err.unknown") }
}

/// Keys for an error page: heading and message.
pub fn error_heading_and_message(code: &str) -> (&'static str, &'static str) {
    let title = format!("error.{code}.title");
    match MESSAGES.iter().position(|(k, _, _)| *k == title) {
        Some(i) => {
            let heading = MESSAGES[i].0;
            let msg_key = format!("error.{code}.message");
            let message =
                MESSAGES.iter().find(|(k, _, _)| *k == msg_key).map(|m| m.0).unwrap_or("error.generic.message");
            (heading, message)
        }
        None => ("error.generic.title", "error.generic.message"),
    }
}

/// Only known flash keys are shown; anything else in `?done=` is ignored.
pub fn flash_key(done: &str) -> Option<&'static str> {
    let key = format!("flash.{done}");
    MESSAGES.iter().find(|(k, _, _)| *k == key).map(|m| m.0)
}

pub fn login_reason_key(reason: &str) -> Option<&'static str> {
    let key = format!("login.reason_{reason}");
    MESSAGES.iter().find(|(k, _, _)| *k == key).map(|m| m.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_used_in_templates_exists_in_both_languages() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut missing = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (prefix, fmt) in [("p.t(\"", "{}"), ("p.e(\"", "err.{}")] {
                    for part in text.split(prefix).skip(1) {
                        let key = part.split('"').next().unwrap();
                        let full = fmt.replace("{}", key);
                        if !has_key(&full) {
                            missing.push(format!("{}: {full}", path.display()));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "missing keys: {missing:?}");
    }

    #[test]
    fn keys_are_unique_and_no_translation_is_empty() {
        let mut seen = std::collections::HashSet::new();
        for (k, en, ja) in MESSAGES {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!en.is_empty() && !ja.is_empty(), "{k}");
        }
    }

    #[test]
    fn error_pages_have_a_heading_and_message_for_every_code() {
        for code in
            ["not_found", "forbidden", "csrf", "internal", "payload_too_large", "headers_too_large", "bad_encoding"]
        {
            let (h, m) = error_heading_and_message(code);
            assert!(h.starts_with(&format!("error.{code}")), "{code}");
            assert!(m.starts_with(&format!("error.{code}")), "{code}");
        }
        assert_eq!(error_heading_and_message("nonsense").0, "error.generic.title");
    }
}
