//! Saved views (personal and shared), the grid's filter rows, sort keys and columns, and views
//! through the API and the export, always under the reader's own rights.

use daicho_testkit::reqwest::{Method, StatusCode};
use daicho_testkit::{Persona, TestApp};
use serde_json::{Value, json};

use crate::location;

struct Deals {
    tid: String,
    title: String,
    amount: String,
    stage: String,
}

/// A deals table with 12 records; the member is in a group that may view it with 金額 hidden.
async fn setup(admin: &Persona) -> Deals {
    let (_, v) = admin.post_json("/api/v1/tables", json!({"name": "案件"})).await;
    let tid = v["table"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, kind) in [
        ("件名", json!({"type": "text"})),
        ("金額", json!({"type": "integer"})),
        ("段階", json!({"type": "choice", "choices": ["見込み", "提案", "受注"]})),
    ] {
        let (s, v) =
            admin.post_json(&format!("/api/v1/tables/{tid}/fields"), json!({"name": name, "kind": kind})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    for i in 0..12 {
        let stage = ["見込み", "提案", "受注"][i % 3];
        let (s, v) = admin
            .post_json(
                &format!("/api/v1/tables/{tid}/records"),
                json!({"values": {"件名": format!("案件{i:02} <b>"), "金額": (i as i64) * 100, "段階": stage}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, users) = admin.get_json("/api/v1/users").await;
    let member = users["users"].as_array().unwrap().iter().find(|u| u["login_id"] == "member1").unwrap()["id"].clone();
    let gid =
        admin.post_json("/api/v1/groups", json!({"name": "営業"})).await.1["group"]["id"].as_str().unwrap().to_owned();
    admin.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/members"), json!({"members": [member]})).await;
    let mut hidden = serde_json::Map::new();
    hidden.insert(ids[1].clone(), json!("hidden"));
    let (s, v) = admin
        .send_json(
            Method::PUT,
            &format!("/api/v1/groups/{gid}/grants/{tid}"),
            json!({"rights": ["view", "export"], "fields": hidden}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    Deals { tid, title: ids[0].clone(), amount: ids[1].clone(), stage: ids[2].clone() }
}

fn titles(v: &Value, d: &Deals) -> Vec<String> {
    v["records"].as_array().unwrap().iter().map(|r| r["values"][&d.title].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn personal_and_shared_views_run_under_the_readers_own_rights() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(a).await;
    let t = &d.tid;

    // The member saves a personal view: one stage, sorted by title descending.
    let (s, v) = m
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "提案中 <i>", "filters": [{"field": "段階", "op": "eq", "value": "提案"}],
                   "sort": [{"field": "件名", "dir": "desc"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["view"]["shared"], false);
    let mine = v["view"]["id"].as_str().unwrap().to_owned();
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?view={mine}")).await;
    assert_eq!(titles(&v, &d), ["案件10 <b>", "案件07 <b>", "案件04 <b>", "案件01 <b>"]);
    // Paging a view: after and limit may be added; anything else would change the view.
    let (_, p1) = m.get_json(&format!("/api/v1/tables/{t}/records?view={mine}&limit=3")).await;
    let after = p1["next_after"].as_str().unwrap();
    let (_, p2) = m.get_json(&format!("/api/v1/tables/{t}/records?view={mine}&limit=3&after={after}")).await;
    assert_eq!(titles(&p2, &d), ["案件01 <b>"]);
    let (s, v) = m.get_json(&format!("/api/v1/tables/{t}/records?view={mine}&q=xx")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "not_with_view");
    // The grid says the same, and lists nothing rather than the wider list.
    let r = m.get(&format!("/tables/{t}?view={mine}&q=xx")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("A saved view cannot be combined with other list parameters"), "{page}");
    assert!(!page.contains("案件01"), "no records listed");
    // Nobody else sees or runs a personal view.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    assert!(v["views"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(a.get_json(&format!("/api/v1/tables/{t}/records?view={mine}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        a.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{mine}"), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(a.get(&format!("/tables/{t}?view=zz%01<b>")).await.status(), StatusCode::NOT_FOUND);
    // Each guess is in the operation history, as guessed record numbers are (the id as given,
    // without its control character).
    let (_, v) = a.get_json("/api/v1/audit?action=permission.denied&limit=50").await;
    let guesses: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["details"].as_str())
        .filter(|d| d.contains("not offered to the reader"))
        .collect();
    assert_eq!(guesses.len(), 3, "{v}");
    assert!(guesses.iter().filter(|d| d.contains(&format!("view:{mine} of table:{t}"))).count() == 2, "{guesses:?}");
    assert!(guesses.iter().any(|d| d.contains("view:zz<b> of")), "{guesses:?}");
    // The same name twice is a conflict; a hidden field cannot be used; sharing needs design.
    let (s, v) = m.post_json(&format!("/api/v1/tables/{t}/views"), json!({"name": "提案中 <i>"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = m
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "x", "sort": [{"field": "金額", "dir": "asc"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["fields"][0]["code"], "unknown_field");
    let (s, _) = m.post_json(&format!("/api/v1/tables/{t}/views"), json!({"name": "共有", "shared": true})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = m
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "y", "filters": [{"field": "段階", "op": "eq.x", "value": ""}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The admin shares two views: one on visible fields, one that filters on the hidden amount.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "受注", "shared": true, "filters": [{"field": d.stage, "op": "eq", "value": "受注"}],
                   "sort": [{"field": "段階", "dir": "asc"}, {"field": "件名", "dir": "asc"}], "columns": ["件名"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let won = v["view"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "大口", "shared": true, "filters": [{"field": d.amount, "op": "gte", "value": "500"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let big = v["view"]["id"].as_str().unwrap().to_owned();
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/views")).await;
    let names: Vec<&str> = v["views"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["受注", "提案中 <i>"], "shared first, then the member's own; not one on a hidden field");
    // ("\"500\"": a bare 500 may occur inside a random id.)
    assert!(!v.to_string().contains(&d.amount) && !v.to_string().contains("\"500\""), "{v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    let names: Vec<&str> = v["views"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["受注", "大口"], "the admin, who sees the amount, is offered both");
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?view={won}")).await;
    assert_eq!(titles(&v, &d), ["案件02 <b>", "案件05 <b>", "案件08 <b>", "案件11 <b>"]);
    assert!(v["records"][0]["values"].get(&d.amount).is_none(), "the amount stays hidden");
    // A shared view on a field the member may not see is not theirs to run: not widened, not
    // explained (which would name the field), not found; nor exported, nor deleted.
    let (s, v) = m.get_json(&format!("/api/v1/tables/{t}/records?view={big}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(!v.to_string().contains(&d.amount) && !v.to_string().contains("\"500\""), "{v}");
    assert_eq!(m.get(&format!("/api/v1/tables/{t}/export.csv?view={big}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{big}"), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={big}")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 7);
    // The export follows the view's filters, sort and columns.
    let csv = m.get(&format!("/api/v1/tables/{t}/export.csv?view={won}")).await.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines, ["件名", "案件02 <b>", "案件05 <b>", "案件08 <b>", "案件11 <b>"]);
    // Only the design right deletes a shared view; the member deletes their own.
    assert_eq!(
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{won}"), json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{mine}"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{won}"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    // Given the design right (the amount still hidden), the member may delete the shared view
    // they are not offered: it holds its name among the table's views.
    let mut hidden = serde_json::Map::new();
    hidden.insert(d.amount.clone(), json!("hidden"));
    let (_, g) = a.get_json("/api/v1/groups").await;
    let gid = g["groups"][0]["id"].as_str().unwrap().to_owned();
    let grant = json!({"rights": ["view", "export", "design"], "fields": hidden});
    assert_eq!(a.send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{t}"), grant).await.0, StatusCode::OK);
    assert_eq!(
        m.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{big}"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    assert!(!v.to_string().contains("大口"), "{v}");
    // Another tenant sees nothing of it; everything is in the operation history.
    let b = &cast.other_admin;
    assert_eq!(b.get_json(&format!("/api/v1/tables/{t}/views")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(b.post_json(&format!("/api/v1/tables/{t}/views"), json!({"name": "x"})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{big}"), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.post_form(&format!("/tables/{t}/views/{big}/delete"), &[]).await.status(), StatusCode::NOT_FOUND);
    let (_, v) = a.get_json("/api/v1/audit?action=view.create").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
    let (_, v) = a.get_json("/api/v1/audit?action=view.delete").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_grid_filters_by_rows_sorts_by_several_keys_chooses_columns_and_saves_views() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(a).await;
    let t = &d.tid;
    // Filter rows (field, condition, value), two sort keys and two chosen columns, without JS.
    let grid = format!(
        "/tables/{t}?q=&ff={}&fo=gte&fv=300&ff={}&fo=any_of&fv=%E8%A6%8B%E8%BE%BC%E3%81%BF,%E5%8F%97%E6%B3%A8&ff=&fo=contains&fv=\
         &sort={}&dir=asc&sort={}&dir=desc&sort=&dir=&col={}&col={}",
        d.amount, d.stage, d.stage, d.title, d.title, d.amount
    );
    let page = a.get(&grid).await.text().await.unwrap();
    let order: Vec<usize> = ["案件11", "案件08", "案件05", "案件09", "案件06", "案件03"]
        .iter()
        .map(|n| page.find(n).unwrap_or_else(|| panic!("{n} missing")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "受注 first (by 段階), then 件名 descending: {order:?}");
    assert!(!page.contains("案件04") && !page.contains("案件02"), "filtered out");
    assert!(page.contains("&#60;b&#62;") && !page.contains("案件11 <b>"), "values are escaped");
    assert!(!page.contains("<th scope=\"col\">段階</th>"), "only the chosen columns");
    // The export link carries the filters and the columns.
    let export = page.split("href=\"/tables/").find(|s| s.contains("export.csv?")).unwrap();
    let export = format!("/tables/{}", export.split('"').next().unwrap().replace("&amp;", "&").replace("&#38;", "&"));
    let csv = a.get(&export).await.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "件名,金額", "{export}");
    assert_eq!(lines.len(), 7, "{csv}");
    // Save it as a shared view from the page, open it, then delete it.
    let query = page
        .split("name=\"query\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let r = a
        .post_form(&format!("/tables/{t}/views"), &[("view_name", "大口の見込み"), ("shared", "on"), ("query", &query)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.contains("view=") && to.contains("done=view_saved"), "{to}");
    let page = a.get(&to).await.text().await.unwrap();
    assert!(page.contains("aria-current=\"page\">大口の見込み"), "the view is the current one");
    assert!(page.find("案件11").unwrap() < page.find("案件03").unwrap());
    assert!(!page.contains("案件04"));
    // The member is not offered the shared view (it filters on the hidden amount): their grid
    // does not list it, and opening it by its address finds nothing; neither page carries the
    // amount's id or the view's filter value (300) in a link or the "save view" form.
    let mpage = cast.member.get(&format!("/tables/{t}")).await.text().await.unwrap();
    assert!(!mpage.contains("大口の見込み"), "not listed for the member");
    let r = cast.member.get(&to.replace("&done=view_saved", "")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body = r.text().await.unwrap();
    for p in [&mpage, &body] {
        assert!(
            !p.contains(&d.amount) && !p.contains("filter.gte") && !p.contains("=300"),
            "hidden field or its filter"
        );
        assert!(!p.contains("金額"), "without naming the hidden field");
    }
    // A shared view with a keyword is not offered to them either (its author may have searched
    // for a hidden value); one without a keyword on fields they see is.
    for (name, keyword) in [("検索つき", "案件1"), ("検索なし", "")] {
        let (s, v) = a
            .post_json(&format!("/api/v1/tables/{t}/views"), json!({"name": name, "shared": true, "keyword": keyword}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, v) = cast.member.get_json(&format!("/api/v1/tables/{t}/views")).await;
    let names: Vec<&str> = v["views"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"検索なし") && !names.contains(&"検索つき"), "{names:?}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    assert!(v["views"].as_array().unwrap().iter().any(|v| v["name"] == "検索つき"), "its author keeps it");
    // Nor when the member asks for the hidden field by its name: the refusal names no field.
    let r = cast.member.get(&format!("/tables/{t}?filter.gte.%E9%87%91%E9%A1%8D=500")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    let alert = page.split("role=\"alert\">").nth(1).and_then(|a| a.split("</p>").next()).unwrap_or_default();
    assert!(!alert.is_empty() && !alert.contains("金額"), "{alert}");
    assert!(!body.contains("案件11"), "nothing is shown under a view the member may not run");
    // A bad name is explained on the grid.
    let r = a.post_form(&format!("/tables/{t}/views"), &[("view_name", ""), ("query", "")]).await;
    let to_err = location(&r);
    assert!(to_err.contains("view_error=required"), "{to_err}");
    // Whatever the form's copy of the grid's query holds, the way back is a valid Location.
    let r =
        a.post_form(&format!("/tables/{t}/views"), &[("view_name", ""), ("query", "q=a\u{1}b\r\nc&x=\u{3042}")]).await;
    assert_eq!(location(&r), format!("/tables/{t}?q=a%01b%0D%0Ac&x=%E3%81%82&view_error=required&view_name="));
    // A name taken already comes back to the form, with the error tied to it.
    let r = a.post_form(&format!("/tables/{t}/views"), &[("view_name", "二重の名前"), ("query", "")]).await;
    assert!(location(&r).contains("done=view_saved"));
    let r = a.post_form(&format!("/tables/{t}/views"), &[("view_name", "二重の名前"), ("query", "")]).await;
    let to_err = location(&r);
    assert!(to_err.contains("view_error=taken"), "{to_err}");
    let page = a.get(&to_err).await.text().await.unwrap();
    assert!(page.contains("value=\"二重の名前\" aria-invalid=\"true\" aria-describedby=\"view-error\""), "{page}");
    let vid = to.split("view=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let r = a.post_form(&format!("/tables/{t}/views/{vid}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(a.get(&format!("/tables/{t}?view={vid}")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_count_matching_records_up_to_a_cap_under_the_readers_rights() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(a).await;
    let t = &d.tid;
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records?count=true&filter.eq.段階=受注&limit=1")).await;
    assert_eq!((v["count"].as_u64(), v["count_capped"].as_bool()), (Some(4), Some(false)), "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "the count is of all matches, not the page");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records")).await;
    assert!(v.get("count").is_none(), "counting is asked for");
    let page = a.get(&format!("/tables/{t}?q=%E6%A1%88%E4%BB%B6")).await.text().await.unwrap();
    assert!(page.contains(">12 records<"), "the grid says how many match");
    // A member whose rows are limited counts only what they may see.
    let (_, g) = a.get_json("/api/v1/groups").await;
    let gid = g["groups"][0]["id"].as_str().unwrap().to_owned();
    a.send_json(
        Method::PUT,
        &format!("/api/v1/groups/{gid}/grants/{t}"),
        json!({"rights": ["view"], "rows": {"type": "created_by_me"}}),
    )
    .await;
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/records?count=true")).await;
    assert_eq!(v["count"].as_u64(), Some(0), "{v}");
}

#[tokio::test]
async fn a_view_saved_oldest_first_opens_oldest_first_from_the_grid_and_the_api() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(a).await;
    let t = &d.tid;
    // The grid's "save this view" with no sort field and ascending order.
    let r = a.post_form(&format!("/tables/{t}/views"), &[("view_name", "古い順"), ("query", "sort=&dir=asc")]).await;
    let to = location(&r);
    let vid = to.split("view=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={vid}&limit=2")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(titles(&v, &d), ["案件00 <b>", "案件01 <b>"], "oldest first");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    let saved = v["views"].as_array().unwrap().iter().find(|x| x["name"] == "古い順").unwrap().clone();
    assert_eq!(saved["sort"], json!([{"field": "id", "dir": "asc"}]), "{saved}");
    // What the API lists, it takes back.
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{t}/views"), json!({"name": "古い順2", "sort": saved["sort"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["view"]["sort"], saved["sort"]);
    // Without the order, newest first as before.
    let (_, v) = a.post_json(&format!("/api/v1/tables/{t}/views"), json!({"name": "新しい順"})).await;
    let newest = v["view"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={newest}&limit=1")).await;
    assert_eq!(titles(&v, &d), ["案件11 <b>"]);
}

#[tokio::test]
async fn views_saved_at_once_under_one_name_make_one_view() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let d = setup(&cast.admin).await;
    let path = format!("/api/v1/tables/{}/views", d.tid);
    let save = || cast.admin.post_json(&path, json!({"name": "同時", "shared": true}));
    let (a, b, c, e, f, g, h, i) = tokio::join!(save(), save(), save(), save(), save(), save(), save(), save());
    let answers = [a, b, c, e, f, g, h, i];
    let made = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(made, 1, "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{answers:?}");
    let (_, v) = cast.admin.get_json(&path).await;
    let named = v["views"].as_array().unwrap().iter().filter(|v| v["name"] == "同時").count();
    assert_eq!(named, 1, "{v}");
}

#[tokio::test]
async fn a_view_naming_a_field_deleted_since_runs_without_its_column_and_sort_or_says_it_is_out_of_date() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(a).await;
    let t = &d.tid;
    let save = |name: &'static str, body: Value| async move {
        let mut body = body;
        body["name"] = json!(name);
        body["shared"] = json!(true);
        let (s, v) = a.post_json(&format!("/api/v1/tables/{t}/views"), body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["view"]["id"].as_str().unwrap().to_owned()
    };
    let by_amount = save(
        "金額順",
        json!({"sort": [{"field": "金額", "dir": "desc"}], "columns": ["件名", "金額"],
               "filters": [{"field": "段階", "op": "eq", "value": "受注"}]}),
    )
    .await;
    let over = save("大口", json!({"filters": [{"field": "金額", "op": "gte", "value": "500"}]})).await;
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/fields/{}", d.amount), json!({})).await;
    assert!(s.is_success(), "{s}");
    // Its sort and column on the deleted field are left out: the view runs on the rest.
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    let listed = v["views"].as_array().unwrap();
    let shown = listed.iter().find(|v| v["id"] == by_amount.as_str()).unwrap();
    assert_eq!((shown["sort"].as_array().unwrap().len(), &shown["columns"]), (0, &json!([d.title])), "{shown}");
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={by_amount}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(titles(&v, &d), ["案件11 <b>", "案件08 <b>", "案件05 <b>", "案件02 <b>"], "newest first, the default");
    let r = a.get(&format!("/tables/{t}?view={by_amount}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    // A filter on it cannot run nor be left out: still listed (to be deleted), and says why.
    assert!(listed.iter().any(|v| v["id"] == over.as_str()), "{v}");
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={over}")).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("view_outdated"))
    );
    let r = a.get(&format!("/tables/{t}?view={over}")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("filters by a field that has since been deleted"), "{page}");
    // The page shows that view as the one asked for, and offers to delete it right there.
    assert!(
        page.contains(&format!(
            "action=\"/tables/{t}/views/{over}/delete\" class=\"inline-form\"><input type=\"hidden\" name=\"csrf\""
        )),
        "{page}"
    );
    assert!(page.contains("Delete this view"), "{page}");
    assert!(page.contains(&format!("href=\"/tables/{t}?view={over}\" aria-current=\"page\"")), "{page}");
    assert!(!page.contains("案件01"), "no records listed");
    // Deleted for good (purged from the trash), the field leaves no trace in saved views: the
    // view filtering by it goes with it, the other keeps its other columns and filter.
    let (s, v) = a.send_json(Method::DELETE, &format!("/api/v1/trash/tables/{t}/fields/{}", d.amount), json!({})).await;
    assert!(s.is_success(), "{s} {v}");
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    let names: Vec<&str> = v["views"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["金額順"], "{v}");
    let sql: &'static str =
        Box::leak(format!("SELECT COUNT(*) FROM saved_views WHERE spec LIKE '%{}%'", d.amount).into_boxed_str());
    assert_eq!(app.raw_i64(sql).await, 0, "no view spec names the purged field");
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={by_amount}")).await;
    assert_eq!((s, titles(&v, &d).len()), (StatusCode::OK, 4), "{v}");
    let (s, _) = a.send_json(Method::DELETE, &format!("/api/v1/tables/{t}/views/{over}"), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "gone with the field");
}

/// A view whose filter no longer fits its field (the field's type changed: "at least 500" on
/// a number made text) is out of date as one on a deleted field is, with its delete button,
/// not a mistake in the reader's query; its other filters and views run on.
#[tokio::test]
async fn a_view_whose_filter_no_longer_fits_its_retyped_field_says_it_is_out_of_date() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let a = &cast.admin;
    let d = setup(a).await;
    let t = &d.tid;
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "大口", "shared": true, "filters": [{"field": "金額", "op": "gte", "value": "500"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let over = v["view"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "受注", "shared": true, "filters": [{"field": "段階", "op": "eq", "value": "受注"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let won = v["view"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={over}")).await;
    assert_eq!((s, titles(&v, &d).len()), (StatusCode::OK, 7), "{v}");
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{t}/fields/{}/retype", d.amount), json!({"kind": {"type": "text"}})).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={over}")).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("view_outdated")),
        "{v}"
    );
    let r = a.get(&format!("/tables/{t}?view={over}")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("whose type or choices changed"), "{page}");
    assert!(page.contains("Delete this view"), "{page}");
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={won}")).await;
    assert_eq!((s, titles(&v, &d).len()), (StatusCode::OK, 4), "{v}");
    // A field made a date-time since: "contains" is no operator of it, the view out of date.
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{t}/fields"), json!({"name": "予定", "kind": {"type": "text"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let planned = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "予定あり", "shared": true, "filters": [{"field": "予定", "op": "contains", "value": "2026"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let planned_view = v["view"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "未定", "shared": true, "filters": [{"field": "予定", "op": "eq", "value": "未定"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let undecided = v["view"]["id"].as_str().unwrap().to_owned();
    let (s, v) = a
        .post_json(&format!("/api/v1/tables/{t}/fields/{planned}/retype"), json!({"kind": {"type": "date_time"}}))
        .await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    for view in [&planned_view, &undecided] {
        let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={view}")).await;
        assert_eq!(
            (s, v["error"]["fields"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("view_outdated")),
            "{v}"
        );
    }
    // One saved on the date-time as it is now, a day in the tenant's time, runs.
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/views"),
            json!({"name": "四月一日", "shared": true, "filters": [{"field": "予定", "op": "eq", "value": "2026-04-01"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?view={}", v["view"]["id"].as_str().unwrap())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The same filter typed into a query is the reader's mistake, said as such.
    let (s, v) = a.get_json(&format!("/api/v1/tables/{t}/records?filter.gte.{}=500", d.amount)).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_operator")),
        "{v}"
    );
}

#[tokio::test]
async fn a_shared_view_naming_a_linked_record_by_its_text_is_not_offered_to_who_may_not_read_that_text() {
    let app = TestApp::start().await;
    let cast = app.cast().await;
    let (a, m) = (&cast.admin, &cast.member);
    let d = setup(a).await;
    let t = &d.tid;
    // A customers table the member may not view, and a link to it from the deals.
    let (_, v) = a.post_json("/api/v1/tables", json!({"name": "顧客"})).await;
    let customers = v["table"]["id"].as_str().unwrap().to_owned();
    let (_, v) = a
        .post_json(&format!("/api/v1/tables/{customers}/fields"), json!({"name": "会社名", "kind": {"type": "text"}}))
        .await;
    let company = v["table"]["fields"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    let (s, v) =
        a.post_json(&format!("/api/v1/tables/{customers}/records"), json!({"values": {"会社名": "秘密商事"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = a
        .post_json(
            &format!("/api/v1/tables/{t}/fields"),
            json!({"name": "顧客", "kind": {"type": "link", "table": customers, "show": company}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let save = |name: &'static str, value: &'static str| async move {
        let body = json!({"name": name, "shared": true, "filters": [{"field": "顧客", "op": "eq", "value": value}]});
        let (s, v) = a.post_json(&format!("/api/v1/tables/{t}/views"), body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    };
    save("秘密商事の案件", "秘密商事").await;
    save("顧客1の案件", "#1").await;
    // As the grid's link input writes a record: its number and its text.
    save("番号と名前", "#1 秘密商事").await;
    let names = |v: &Value| {
        let mut n =
            v["views"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        n.sort();
        n
    };
    let (_, v) = a.get_json(&format!("/api/v1/tables/{t}/views")).await;
    assert_eq!(names(&v), ["番号と名前", "秘密商事の案件", "顧客1の案件"]);
    // The member may view the deals but not the customers: the customer's name is not shown
    // to them by the list of views (nor the grid); a view by number is.
    let (_, v) = m.get_json(&format!("/api/v1/tables/{t}/views")).await;
    assert_eq!(names(&v), ["顧客1の案件"], "{v}");
    assert!(!v.to_string().contains("秘密商事"));
    let page = m.get(&format!("/tables/{t}")).await.text().await.unwrap();
    assert!(!page.contains("秘密商事"), "{page}");
    // Nor does the table's design tell them the id of a table they may not view.
    for (who, told) in [(a, true), (m, false)] {
        let (_, v) = who.get_json(&format!("/api/v1/tables/{t}")).await;
        let link = v["table"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "顧客").unwrap().clone();
        assert_eq!(link["kind"]["type"], "link", "{link}");
        assert_eq!(link["kind"]["table"] == customers.as_str(), told, "{link}");
        assert_eq!(v.to_string().contains(&customers), told, "{v}");
        let (_, v) = who.get_json("/api/v1/tables").await;
        assert_eq!(v.to_string().contains(&customers), told, "{v}");
    }
    // Nor does an answer to a change of the design, for a member who may design the deals.
    let (_, v) = a.get_json("/api/v1/groups").await;
    let gid = v["groups"].as_array().unwrap().iter().find(|g| g["name"] == "営業").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = a
        .send_json(Method::PUT, &format!("/api/v1/groups/{gid}/grants/{t}"), json!({"rights": ["view", "design"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = m.send_json(Method::PATCH, &format!("/api/v1/tables/{t}"), json!({"description": "案件一覧"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains(&customers), "{v}");
    let (s, v) =
        m.post_json(&format!("/api/v1/tables/{t}/fields"), json!({"name": "備考", "kind": {"type": "text"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(!v.to_string().contains(&customers), "{v}");
}
