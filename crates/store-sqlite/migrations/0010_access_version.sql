-- The design version also moves when the tenant's permission matrix changes: a group, its
-- members or its grants inserted, changed or deleted, whichever code did it. Each node keeps
-- the grants a user's requests read, tagged with this version, as it keeps table designs
-- (crates/web/src/designs.rs); a request reads the version with its session, so a revoked
-- right is refused on every node from the next request on.
CREATE TRIGGER user_groups_access_insert AFTER INSERT ON user_groups BEGIN
    UPDATE tenants SET design_version = design_version + 1 WHERE id = NEW.tenant_id;
END;
CREATE TRIGGER user_groups_access_update AFTER UPDATE ON user_groups BEGIN
    UPDATE tenants SET design_version = design_version + 1 WHERE id IN (OLD.tenant_id, NEW.tenant_id);
END;
CREATE TRIGGER user_groups_access_delete AFTER DELETE ON user_groups BEGIN
    UPDATE tenants SET design_version = design_version + 1 WHERE id = OLD.tenant_id;
END;
CREATE TRIGGER group_members_access_insert AFTER INSERT ON group_members BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id = (SELECT tenant_id FROM user_groups WHERE id = NEW.group_id);
END;
CREATE TRIGGER group_members_access_update AFTER UPDATE ON group_members BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id IN (SELECT tenant_id FROM user_groups WHERE id IN (OLD.group_id, NEW.group_id));
END;
CREATE TRIGGER group_members_access_delete AFTER DELETE ON group_members BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id = (SELECT tenant_id FROM user_groups WHERE id = OLD.group_id);
END;
CREATE TRIGGER table_grants_access_insert AFTER INSERT ON table_grants BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id = (SELECT tenant_id FROM user_groups WHERE id = NEW.group_id);
END;
CREATE TRIGGER table_grants_access_update AFTER UPDATE ON table_grants BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id IN (SELECT tenant_id FROM user_groups WHERE id IN (OLD.group_id, NEW.group_id));
END;
CREATE TRIGGER table_grants_access_delete AFTER DELETE ON table_grants BEGIN
    UPDATE tenants SET design_version = design_version + 1
    WHERE id = (SELECT tenant_id FROM user_groups WHERE id = OLD.group_id);
END;
