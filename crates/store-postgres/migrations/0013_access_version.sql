-- The design version also moves when the tenant's permission matrix changes: a group, its
-- members or its grants inserted, changed or deleted, whichever code did it. Each node keeps
-- the grants a user's requests read, tagged with this version, as it keeps table designs
-- (crates/web/src/designs.rs); a request reads the version with its session, so a revoked
-- right is refused on every node from the next request on.
CREATE FUNCTION access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'user_groups' THEN
        IF TG_OP <> 'INSERT' THEN
            UPDATE tenants SET design_version = design_version + 1 WHERE id = OLD.tenant_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            UPDATE tenants SET design_version = design_version + 1 WHERE id = NEW.tenant_id;
        END IF;
    ELSE
        -- group_members and table_grants: the tenant is that of the group (old and new).
        IF TG_OP <> 'INSERT' THEN
            UPDATE tenants SET design_version = design_version + 1
            WHERE id = (SELECT tenant_id FROM user_groups WHERE id = OLD.group_id);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            UPDATE tenants SET design_version = design_version + 1
            WHERE id = (SELECT tenant_id FROM user_groups WHERE id = NEW.group_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_groups_access AFTER INSERT OR UPDATE OR DELETE ON user_groups
    FOR EACH ROW EXECUTE FUNCTION access_changed();
CREATE TRIGGER group_members_access AFTER INSERT OR UPDATE OR DELETE ON group_members
    FOR EACH ROW EXECUTE FUNCTION access_changed();
CREATE TRIGGER table_grants_access AFTER INSERT OR UPDATE OR DELETE ON table_grants
    FOR EACH ROW EXECUTE FUNCTION access_changed();
